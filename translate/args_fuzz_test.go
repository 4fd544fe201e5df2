package translate_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

// FuzzCNIArgs builds the CNI_ARGS of a Join from fuzzed container labels
// (the cni.args label and the io.kubernetes.pod.* ones) and name. Nothing
// may panic; accepted args must reach the plugins intact: checkArgs, and
// the cni.args label written back from what ParseArgsLabel returned parses
// to the same args.
func FuzzCNIArgs(f *testing.F) {
	for _, s := range [][4]string{
		{"", "web", "", ""},
		{"K8S_POD_NAME_EXTRA=1", "web", "", ""},
		{"FOO=bar; BAZ=qux", "", "pod-a", "kube-system"},
		{"MAC=02:42:0a:00:00:05;IP=10.0.0.5", "db", "", "default"},
		{"IgnoreUnknown=1", "web", "", ""},
		{"A=1;A=2", "web", "", ""},
		{"=x;", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	for _, r := range goldenRequests[planJoinRequest](f, "planjoin") {
		id := r.Endpoint.Identity
		f.Add(id.Labels[translate.LabelCNIArgs], id.Name, id.Labels[translate.LabelPodName], id.Labels[translate.LabelPodNamespace])
	}
	const endpointID = "e10001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

	f.Fuzz(func(t *testing.T, label, name, podName, podNamespace string) {
		extra, err := translate.ParseArgsLabel(label)
		if err == nil {
			checkArgs(t, extra)
			var kvs []string
			for _, a := range extra {
				kvs = append(kvs, a[0]+"="+a[1])
			}
			again, err := translate.ParseArgsLabel(strings.Join(kvs, ";"))
			if err != nil || len(again) != len(extra) {
				t.Fatalf("label %q parsed as %q; written back as %q it parses as %q, %v", label, extra, strings.Join(kvs, ";"), again, err)
			}
			for i := range again {
				if again[i] != extra[i] {
					t.Fatalf("label %q parsed as %q; written back it parses as %q", label, extra, again)
				}
			}
		}
		id := translate.Identity{Name: name, Labels: map[string]string{
			translate.LabelCNIArgs: label, translate.LabelPodName: podName, translate.LabelPodNamespace: podNamespace,
		}}
		args, err := translate.CNIArgs(id, endpointID, "default", translate.NetworkArgs{})
		if err != nil {
			return
		}
		checkArgs(t, args)
		if len(args) < 4 || args[0] != [2]string{"IgnoreUnknown", "1"} || args[1][0] != "K8S_POD_NAMESPACE" ||
			args[2][0] != "K8S_POD_NAME" || args[3][0] != "K8S_POD_INFRA_CONTAINER_ID" {
			t.Fatalf("CNIArgs = %q, want IgnoreUnknown, the pod namespace, name and infra container first", args)
		}
		if len(args) != 4+len(extra) {
			t.Fatalf("CNIArgs = %q: the label's args were %q", args, extra)
		}
	})
}

// FuzzNetworkArgs parses a fuzzed -o cni.args and builds a Join's CNI_ARGS
// with it and a fuzzed cni.args label. Nothing may panic; accepted args
// reach the plugins intact (checkArgs); with the word none no K8S_POD_* arg
// is sent; every pair of the option is sent, with the label's value where
// the label gives the key too.
func FuzzNetworkArgs(f *testing.F) {
	for _, s := range [][2]string{
		{"none", ""},
		{"k8s;ZONE=a", "ZONE=b"},
		{"none;FOO=1;BAR=2", "BAZ=3"},
		{"k8s;none", ""},
		{"K8S_POD_NAME=x", ""},
		{"FOO", ""},
		{"FOO=a=b", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, opt, label string) {
		na, err := translate.ParseNetworkArgs(opt)
		if err != nil {
			return
		}
		checkArgs(t, na.Pairs)
		if na.Identity != "" && na.Identity != translate.ArgsK8s && na.Identity != translate.ArgsNone {
			t.Fatalf("-o cni.args %q: identity %q", opt, na.Identity)
		}
		id := translate.Identity{Name: "web", Labels: map[string]string{translate.LabelCNIArgs: label}}
		args, err := translate.CNIArgs(id, "e10001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "default", na)
		if err != nil {
			return
		}
		checkArgs(t, args)
		got := map[string]string{}
		for _, a := range args {
			got[a[0]] = a[1]
		}
		if _, has := got["K8S_POD_NAME"]; has == (na.Identity == translate.ArgsNone) {
			t.Fatalf("-o cni.args %q (identity %q): CNI_ARGS %q", opt, na.Identity, args)
		}
		fromLabel, _ := translate.ParseArgsLabel(label)
		for _, kv := range na.Pairs {
			want := kv[1]
			for _, l := range fromLabel {
				if l[0] == kv[0] {
					want = l[1]
				}
			}
			if got[kv[0]] != want {
				t.Fatalf("-o cni.args %q, label %q: %s=%q in CNI_ARGS %q, want %q", opt, label, kv[0], got[kv[0]], args, want)
			}
		}
	})
}

var argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkArgs: CNI_ARGS reach a plugin as one environment variable that
// types.LoadArgs splits at ';' and '=': every name is an identifier given
// once, and no value holds ';', '=', a newline or a NUL (which the exec
// of the plugin refuses in its environment).
func checkArgs(t *testing.T, args [][2]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range args {
		if !argName.MatchString(a[0]) || seen[a[0]] {
			t.Fatalf("CNI args %q: name %q is not an identifier given once", args, a[0])
		}
		seen[a[0]] = true
		if strings.ContainsAny(a[1], ";=\n\x00") {
			t.Fatalf("CNI args %q: value %q of %s cannot pass through CNI_ARGS", args, a[1], a[0])
		}
	}
}
