package engine

import (
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestGaveUp(t *testing.T) {
	missing := `failed to create endpoint web on network appnet: plugin "cni" not found`
	for _, tc := range []struct {
		policy container.RestartPolicyMode
		err    string
		want   bool
	}{
		{container.RestartPolicyAlways, missing, true},
		{container.RestartPolicyUnlessStopped, missing, true},
		{container.RestartPolicyOnFailure, missing, true},
		{container.RestartPolicyDisabled, missing, false},
		{"", missing, false},
		{container.RestartPolicyAlways, "", false},
		{container.RestartPolicyAlways, `plugin "other" not found`, false},
		{container.RestartPolicyAlways, "OCI runtime create failed", false},
	} {
		if got := GaveUp(tc.policy, tc.err, "cni"); got != tc.want {
			t.Errorf("GaveUp(%q, %q) = %v, want %v", tc.policy, tc.err, got, tc.want)
		}
	}
}

func TestFromEvent(t *testing.T) {
	c := FromEvent("c0ffee", map[string]string{"name": "web", "image": "busybox", "io.kubernetes.pod.name": "web-0", "cni.args": "A=b"})
	if c.ID != "c0ffee" || c.Name != "web" || len(c.Labels) != 2 || c.Labels["io.kubernetes.pod.name"] != "web-0" || c.Labels["cni.args"] != "A=b" {
		t.Errorf("FromEvent = %+v", c)
	}
}
