package translate

import (
	"encoding/json"
	"strings"

	"github.com/containernetworking/cni/pkg/version"
)

// Verbs are the CNI verbs beyond ADD, DEL and VERSION that docker-cni sends
// for a network, by the cniVersion of its conflist.
type Verbs struct {
	// Status: STATUS before every Join's ADD (1.1.0 and later). A plugin
	// that is not ready fails the Join with its message, and nothing is
	// set up.
	Status bool
	// Check: CHECK of live attachments at reconcile (0.4.0 and later),
	// of those that are Checkable.
	Check bool
	// GC: GC at reconcile (1.1.0 and later), with docker-cni's live
	// attachments as the valid ones. Only where docker-cni owns every
	// attachment of the network (a generated conflist): a bound network's
	// plugins keep the pods' attachments too (their IPAM store, their
	// rules), which the pods' runtime lists in its own GC and docker-cni
	// cannot, so its GC would release the pods' addresses.
	GC bool
}

// VerbsFor says which verbs docker-cni sends for a conflist of version
// listVersion; bound is whether the network is bound to a conflist of the
// conf dir.
func VerbsFor(listVersion string, bound bool) Verbs {
	at := func(v string) bool {
		ok, err := version.GreaterThanOrEqualTo(listVersion, v)
		return err == nil && ok
	}
	return Verbs{Status: at("1.1.0"), Check: at("0.4.0"), GC: at("1.1.0") && !bound}
}

// CheckFacts are what is known of a live attachment when CHECK is due.
type CheckFacts struct {
	Mode JoinMode
	// IfName is the name ADD gave the interface; NameNow the name of the
	// link with the interface's MAC in the netns ADD ran in ("": none
	// there).
	IfName, NameNow string
	// ResultMAC is the interface's MAC in ADD's result (what CHECK
	// compares with); MAC the one it has once Docker has it.
	ResultMAC, MAC string
}

// Checkable says whether CHECK can hold for an attachment: the interface
// must be where ADD put it, as ADD left it. It is in direct mode
// (libnetwork leaves the interface alone) and in handover mode, unless the
// engine named the interface itself (Docker before 28, which hands over
// only on docker network connect) or libnetwork set a MAC the chain could
// not (generated networks: docker inspect shows the MAC the container
// has). In move mode the chain ran in a scratch netns that is gone by
// then. A link not found is checked: CHECK says what is missing.
func Checkable(f CheckFacts) bool {
	if f.Mode != JoinDirect && f.Mode != JoinHandover {
		return false
	}
	if f.NameNow != "" && f.NameNow != f.IfName {
		return false
	}
	return f.ResultMAC == "" || f.MAC == "" || strings.EqualFold(f.ResultMAC, f.MAC)
}

// StoredResultMAC is the MAC of interface ifName inside the container in
// a CNI result as docker-cni stores it (any version from 0.3.0; "" when
// it has none).
func StoredResultMAC(result []byte, ifName string) string {
	var r struct {
		Interfaces []struct {
			Name, Mac, Sandbox string
		} `json:"interfaces"`
	}
	if json.Unmarshal(result, &r) != nil {
		return ""
	}
	mac := ""
	for _, i := range r.Interfaces {
		if i.Name == ifName && i.Sandbox != "" {
			mac = i.Mac
		}
	}
	return mac
}
