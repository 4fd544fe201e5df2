package translate_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/translate"
)

// FuzzNetworkOptions parses CreateNetwork options: a fuzzed Options object
// (seeded with what real engines sent and the options goldens) with one
// more fuzzed -o key=value added to its generic options, as the docker CLI
// passes them. Nothing may panic, and:
//   - the same options always get the same answer: the same options, or
//     the same error text;
//   - accepted options hold only known -o keys, each value in range (MTU
//     68-65535, a valid bridge name, a join mode, a CNI version that chains)
//     and equal to what was given; written back in Docker's form they parse
//     to the same options;
//   - CheckBinding of the -o cni.network value against a fuzzed
//     --ipam-opt value answers the --ipam-opt value, or refuses a binding
//     that disagrees or comes without it or with Docker's IPAM.
func FuzzNetworkOptions(f *testing.F) {
	for _, o := range traceOptions(f, "NetworkDriver.CreateNetwork") {
		f.Add([]byte(o), translate.OptNetwork, "k8s-pod-network", "k8s-pod-network", false)
	}
	for _, b := range seedFiles(f, "testdata/options-*/request.json") {
		f.Add(b, cnm.OptMTU, "1400", "", false)
	}
	for _, kv := range [][2]string{
		{translate.OptJoin, "direct"}, {translate.OptVersion, "0.4.0"}, {cnm.OptBridgeName, "br-apps"},
		{cnm.OptMTU, "+1500"}, {translate.OptNetwork, ""}, {"com.docker.network.bridge.enable_icc", "true"},
	} {
		f.Add([]byte(`{"com.docker.network.enable_ipv6":"true","com.docker.network.generic":{"cni.network":"pods"}}`), kv[0], kv[1], "pods", true)
	}

	f.Fuzz(func(t *testing.T, optsJSON []byte, key, value, poolBinding string, dockerIPAM bool) {
		opts := map[string]any{}
		if err := json.Unmarshal(optsJSON, &opts); err != nil || opts == nil {
			opts = map[string]any{}
		}
		generic, ok := opts[cnm.OptGeneric].(map[string]any)
		if !ok {
			generic = map[string]any{}
			opts[cnm.OptGeneric] = generic
		}
		generic[key] = value

		no, err := translate.ParseNetworkOptions(opts)
		// Go randomises map order: a small map iterates in another order
		// about one time in eight, so an error is asked for often.
		repeat := 1
		if err != nil {
			repeat = 64
		}
		for i := 0; i < repeat; i++ {
			no2, err2 := translate.ParseNetworkOptions(opts)
			if errText(err2) != errText(err) || (err == nil && !reflect.DeepEqual(no2, no)) {
				t.Fatalf("ParseNetworkOptions(%v) answered %+v %q, then %+v %q", opts, no, errText(err), no2, errText(err2))
			}
		}
		if err != nil {
			return
		}
		checkGeneric(t, generic, no)
		if internal, _ := opts[cnm.OptInternal]; !sameBool(internal, no.Internal) {
			t.Fatalf("%s %v parsed as %v", cnm.OptInternal, internal, no.Internal)
		}
		if ipv6, _ := opts[cnm.OptEnableIPv6]; !sameBool(ipv6, no.IPv6) {
			t.Fatalf("%s %v parsed as %v", cnm.OptEnableIPv6, ipv6, no.IPv6)
		}
		again, err := translate.ParseNetworkOptions(dockerOptions(no))
		if err != nil || !reflect.DeepEqual(again, no) {
			t.Fatalf("%+v written back as %v parses as %+v, %v", no, dockerOptions(no), again, err)
		}

		binding, err := translate.CheckBinding(poolBinding, no.CNINetwork, dockerIPAM)
		refuse := no.CNINetwork != "" && (dockerIPAM || no.CNINetwork != poolBinding)
		if (err != nil) != refuse || (err == nil && binding != poolBinding) || (err != nil && binding != "") {
			t.Fatalf("CheckBinding(%q, %q, %v) = %q, %v", poolBinding, no.CNINetwork, dockerIPAM, binding, err)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkGeneric: every -o option was known, and each field holds the value
// given, in range.
func checkGeneric(t *testing.T, generic map[string]any, no translate.NetworkOptions) {
	t.Helper()
	str := func(k string) string {
		s, _ := generic[k].(string)
		return s
	}
	for k, v := range generic {
		if _, ok := v.(string); !ok || !slices.Contains([]string{translate.OptNetwork, translate.OptVersion, translate.OptJoin, translate.OptArgs, cnm.OptBridgeName, cnm.OptMTU}, k) {
			t.Fatalf("-o %s=%v accepted", k, v)
		}
	}
	if no.CNINetwork != str(translate.OptNetwork) || no.CNIVersion != str(translate.OptVersion) ||
		string(no.Join) != str(translate.OptJoin) || no.BridgeName != str(cnm.OptBridgeName) {
		t.Fatalf("options %v parsed as %+v", generic, no)
	}
	if na, err := translate.ParseNetworkArgs(str(translate.OptArgs)); err != nil || !reflect.DeepEqual(na, no.Args) {
		t.Fatalf("-o %s=%q parsed as %+v, on its own as %+v, %v", translate.OptArgs, str(translate.OptArgs), no.Args, na, err)
	}
	if no.CNIVersion != "" && !slices.Contains(translate.ChainVersions(), no.CNIVersion) {
		t.Fatalf("CNI version %q accepted; it cannot chain plugins", no.CNIVersion)
	}
	if no.Join != "" && no.Join != translate.JoinHandover && no.Join != translate.JoinDirect {
		t.Fatalf("join mode %q accepted", no.Join)
	}
	if _, given := generic[cnm.OptBridgeName]; given && translate.ValidIfName(no.BridgeName) != nil {
		t.Fatalf("bridge name %q accepted", no.BridgeName)
	}
	if s, given := generic[cnm.OptMTU]; given {
		if n, err := strconv.Atoi(s.(string)); err != nil || n != no.MTU || n < 68 || n > 65535 {
			t.Fatalf("MTU %q accepted as %d", s, no.MTU)
		}
	} else if no.MTU != 0 {
		t.Fatalf("MTU %d without the option", no.MTU)
	}
}

// sameBool: a boolean option given as v (absent, a bool or a string) reads
// as b.
func sameBool(v any, b bool) bool {
	switch v := v.(type) {
	case nil:
		return !b
	case bool:
		return v == b
	case string:
		p, err := strconv.ParseBool(v)
		return err == nil && p == b
	}
	return false
}

// dockerOptions writes parsed options back in the form Docker sends.
func dockerOptions(no translate.NetworkOptions) map[string]any {
	generic := map[string]any{}
	for k, v := range map[string]string{
		translate.OptNetwork: no.CNINetwork, translate.OptVersion: no.CNIVersion,
		translate.OptJoin: string(no.Join), cnm.OptBridgeName: no.BridgeName,
	} {
		if v != "" {
			generic[k] = v
		}
	}
	if no.MTU != 0 {
		generic[cnm.OptMTU] = strconv.Itoa(no.MTU)
	}
	items := []string{no.Args.Identity}
	for _, kv := range no.Args.Pairs {
		items = append(items, kv[0]+"="+kv[1])
	}
	if s := strings.Trim(strings.Join(items, ";"), ";"); s != "" {
		generic[translate.OptArgs] = s
	}
	return map[string]any{cnm.OptInternal: no.Internal, cnm.OptEnableIPv6: no.IPv6, cnm.OptGeneric: generic}
}
