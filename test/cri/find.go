package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FindPod returns the ready pod sandbox of namespace/name that another CRI
// client made (a kubelet: it labels sandboxes with the pod's name and
// namespace), with its IP and network namespace; an error when there is
// none yet.
func (r *Runtime) FindPod(ctx context.Context, name, namespace string) (*Pod, error) {
	resp, err := r.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace},
	}})
	if err != nil {
		return nil, fmt.Errorf("find pod %s/%s: list sandboxes: %w", namespace, name, err)
	}
	if len(resp.GetItems()) != 1 {
		return nil, fmt.Errorf("find pod %s/%s: %d ready sandboxes", namespace, name, len(resp.GetItems()))
	}
	sb := resp.GetItems()[0]
	st, err := r.rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("find pod %s/%s: sandbox %.12s status: %w", namespace, name, sb.Id, err)
	}
	pod := &Pod{ID: sb.Id, Name: name, Namespace: namespace, UID: sb.GetMetadata().GetUid(),
		IP: st.GetStatus().GetNetwork().GetIp(), NetNS: netnsFromInfo(st.GetInfo()["info"])}
	if pod.IP == "" || pod.NetNS == "" {
		return nil, fmt.Errorf("find pod %s/%s: sandbox %.12s has IP %q, netns %q", namespace, name, sb.Id, pod.IP, pod.NetNS)
	}
	return pod, nil
}
