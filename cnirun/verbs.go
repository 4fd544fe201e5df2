package cnirun

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// The verbs beyond ADD and DEL. Each runs only where the conflist's version
// has it (libcni checks too); translate.Verbs says where that is.

// Status asks every plugin of a conflist whether it is ready for ADD (CNI
// 1.1.0 STATUS). An error is the first plugin's that is not.
func (l *LibCNI) Status(ctx context.Context, list []byte) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return err
	}
	return l.timedOut(ctx, l.cni.GetStatusNetworkList(ctx, nl))
}

// Check runs CHECK (CNI 0.4.0) over a conflist for an attachment ADD made:
// each plugin checks that what it set up is still there, against the
// result libcni cached at ADD.
func (l *LibCNI) Check(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return err
	}
	return l.timedOut(ctx, l.cni.CheckNetworkList(ctx, nl, rt))
}

// GC runs CNI 1.1.0 garbage collection over a conflist: libcni DELs the
// attachments of the network in docker-cni's own cache that are not in
// valid, then every plugin is sent GC with valid, to drop what it keeps
// for any other attachment.
func (l *LibCNI) GC(ctx context.Context, list []byte, valid []types.GCAttachment) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return err
	}
	if err := l.cni.GCNetworkList(ctx, nl, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return l.timedOut(ctx, fmt.Errorf("GC %s: %w", nl.Name, err))
	}
	return nil
}
