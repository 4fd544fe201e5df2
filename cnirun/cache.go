package cnirun

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

// Cached returns the attachment of containerID (a CNI container ID) to the
// CNI network named network as libcni's cache holds it, and its cached
// result (nil, nil, nil when the cache has none): what DEL needs when
// docker-cni's own record of the attachment was lost.
func (l *LibCNI) Cached(containerID, network string) (*libcni.NetworkAttachment, json.RawMessage, error) {
	atts, err := l.cni.GetCachedAttachments(containerID)
	if err != nil {
		return nil, nil, fmt.Errorf("read the CNI cache of container %s: %w", containerID, err)
	}
	for _, a := range atts {
		if a.Network != network {
			continue
		}
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil {
			return a, nil, nil
		}
		res, err := l.cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: a.ContainerID, IfName: a.IfName})
		if err != nil || res == nil {
			return a, nil, nil
		}
		b, err := json.Marshal(res)
		if err != nil {
			return a, nil, nil
		}
		return a, b, nil
	}
	return nil, nil, nil
}
