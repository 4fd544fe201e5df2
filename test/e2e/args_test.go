package e2e

import (
	"strings"
	"testing"
)

// attachmentArgs reads the CNI_ARGS docker-cni ran ADD with for the
// endpoint holding addr.
func attachmentArgs(t *testing.T, addr string) map[string]string {
	t.Helper()
	att, _ := endpointOf(t, addr)["Attachment"].(map[string]any)
	if att == nil {
		t.Fatalf("endpoint of %s has no attachment", addr)
	}
	out := map[string]string{}
	for _, kv := range att["Args"].([]any) {
		p := kv.([]any)
		out[p[0].(string)] = p[1].(string)
	}
	return out
}

// TestCNIArgs: CNI_ARGS carry Kubernetes-style pod identity, from the
// io.kubernetes.pod.* labels where given, from the container name (which
// current engines hand IPAM) otherwise, plus the cni.args label; a bad
// cni.args label fails docker run with a message naming it.
func TestCNIArgs(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "args")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(19))
		labelled, plain := name+"-pod", name+"-plain"
		e.container(t, labelled, "--network", name,
			"--label", "io.kubernetes.pod.name=web-0", "--label", "io.kubernetes.pod.namespace=team-a",
			"--label", "io.kubernetes.pod.uid=1234-abcd", "--label", "cni.args=FOO=bar;ZONE=z1")
		e.container(t, plain, "--network", name)

		args := attachmentArgs(t, e.inspectIP(t, labelled, name))
		plainArgs := attachmentArgs(t, e.inspectIP(t, plain, name))
		if args["IgnoreUnknown"] != "1" || plainArgs["IgnoreUnknown"] != "1" {
			t.Errorf("CNI_ARGS without IgnoreUnknown=1: %v, %v", args, plainArgs)
		}
		if plainArgs["K8S_POD_NAMESPACE"] != "default" {
			t.Errorf("K8S_POD_NAMESPACE of an unlabelled container: %q, want the default namespace", plainArgs["K8S_POD_NAMESPACE"])
		}
		if e.name == "current" {
			// Current engines send the container name to IPAM, so labels
			// can be found for it.
			want := map[string]string{"FOO": "bar", "ZONE": "z1", "K8S_POD_NAME": "web-0", "K8S_POD_NAMESPACE": "team-a", "K8S_POD_UID": "1234-abcd"}
			for k, v := range want {
				if args[k] != v {
					t.Errorf("CNI_ARGS %s of %s: %q, want %q (all: %v)", k, labelled, args[k], v, args)
				}
			}
			id := e.must(t, "inspect", "-f", "{{.Id}}", labelled)
			if args["K8S_POD_INFRA_CONTAINER_ID"] != id {
				t.Errorf("K8S_POD_INFRA_CONTAINER_ID: %q, want the container ID %s", args["K8S_POD_INFRA_CONTAINER_ID"], id)
			}
			if plainArgs["K8S_POD_NAME"] != plain {
				t.Errorf("K8S_POD_NAME of an unlabelled container: %q, want its name %s", plainArgs["K8S_POD_NAME"], plain)
			}
		} else {
			// Docker 20.10 tells the driver nothing of the container: the
			// pod name falls back to the endpoint, labels cannot be read.
			for _, a := range []map[string]string{args, plainArgs} {
				if !strings.HasPrefix(a["K8S_POD_NAME"], "docker-") || a["FOO"] != "" {
					t.Errorf("CNI_ARGS on 20.10: %v, want K8S_POD_NAME=docker-<endpoint> and no label args", a)
				}
			}
			return
		}

		out, err := e.docker("run", "--rm", "--network", name, "--label", "cni.args=K8S_POD_NAME=evil", image, "true")
		if err == nil || !strings.Contains(out, "label cni.args: K8S_POD_NAME is set by docker-cni") {
			t.Errorf("docker run with a bad cni.args label: err %v, %q", err, out)
		}
	})
}

// TestNetworkCNIArgs: -o cni.args gives every container of a network its
// CNI_ARGS: none sends no K8S_POD_* args, its pairs go to every container
// (a container's cni.args label wins for its keys), and docker network
// inspect shows the option.
func TestNetworkCNIArgs(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "netargs")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(12), "-o", "cni.args=none;ZONE=z1;APP=web")
		if got := e.must(t, "network", "inspect", "-f", `{{index .Options "cni.args"}}`, name); got != "none;ZONE=z1;APP=web" {
			t.Errorf("docker network inspect shows cni.args %q", got)
		}
		c := name + "-c"
		e.container(t, c, "--network", name, "--label", "cni.args=ZONE=z2")
		args := attachmentArgs(t, e.inspectIP(t, c, name))
		if _, has := args["K8S_POD_NAME"]; has || args["IgnoreUnknown"] != "1" || args["APP"] != "web" {
			t.Errorf("CNI_ARGS on a -o cni.args=none network: %v, want IgnoreUnknown and APP=web and no K8S_POD_*", args)
		}
		// 20.10 hands the driver no container identity: no labels there.
		if want := map[string]string{"current": "z2", "debian": "z1"}[e.name]; args["ZONE"] != want {
			t.Errorf("CNI_ARGS ZONE=%q on %s, want %q", args["ZONE"], e.name, want)
		}
	})
}
