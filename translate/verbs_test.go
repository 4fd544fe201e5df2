package translate

import "testing"

func TestVerbsFor(t *testing.T) {
	for _, c := range []struct {
		version string
		bound   bool
		want    Verbs
	}{
		{"0.3.0", false, Verbs{}},
		{"0.3.1", true, Verbs{}},
		{"0.4.0", false, Verbs{Check: true}},
		{"0.4.0", true, Verbs{Check: true}},
		{"1.0.0", false, Verbs{Check: true}},
		{"1.1.0", false, Verbs{Status: true, Check: true, GC: true}},
		// A bound network's plugins hold the pods' attachments too.
		{"1.1.0", true, Verbs{Status: true, Check: true}},
		{"1.2.0", false, Verbs{Status: true, Check: true, GC: true}},
		{"", false, Verbs{}},
		{"not-a-version", false, Verbs{}},
	} {
		if got := VerbsFor(c.version, c.bound); got != c.want {
			t.Errorf("VerbsFor(%q, bound=%v) = %+v, want %+v", c.version, c.bound, got, c.want)
		}
	}
}

func TestCheckable(t *testing.T) {
	const chain, docker = "0a:58:0a:1e:00:02", "02:42:0a:1e:00:02"
	for _, c := range []struct {
		name string
		f    CheckFacts
		want bool
	}{
		{"direct", CheckFacts{Mode: JoinDirect, IfName: "eth1", NameNow: "eth1", ResultMAC: chain, MAC: chain}, true},
		{"handover", CheckFacts{Mode: JoinHandover, IfName: "eth0", NameNow: "eth0", ResultMAC: chain, MAC: chain}, true},
		{"MAC case", CheckFacts{Mode: JoinHandover, IfName: "eth0", NameNow: "eth0", ResultMAC: "0A:58:0A:1E:00:02", MAC: chain}, true},
		// Docker 20.10 on docker network connect: libnetwork named it.
		{"renamed", CheckFacts{Mode: JoinHandover, IfName: "eth0", NameNow: "eth1", ResultMAC: chain, MAC: chain}, false},
		// Generated networks: libnetwork set Docker's MAC.
		{"MAC set by libnetwork", CheckFacts{Mode: JoinHandover, IfName: "eth0", NameNow: "eth0", ResultMAC: chain, MAC: docker}, false},
		// Gone from the netns: CHECK says so.
		{"gone", CheckFacts{Mode: JoinHandover, IfName: "eth0", ResultMAC: chain, MAC: chain}, true},
		{"no MAC in the result", CheckFacts{Mode: JoinDirect, IfName: "net1", NameNow: "net1", MAC: chain}, true},
		{"move", CheckFacts{Mode: JoinMove, IfName: "eth0", NameNow: "eth0", ResultMAC: chain, MAC: chain}, false},
		{"no mode", CheckFacts{IfName: "eth0", NameNow: "eth0"}, false},
	} {
		if got := Checkable(c.f); got != c.want {
			t.Errorf("%s: Checkable(%+v) = %v, want %v", c.name, c.f, got, c.want)
		}
	}
}

func TestStoredResultMAC(t *testing.T) {
	res := []byte(`{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa:aa:aa:aa:aa:aa"},` +
		`{"name":"veth1","mac":"bb:bb:bb:bb:bb:bb"},{"name":"eth0","mac":"0a:58:0a:1e:00:02","sandbox":"/run/netns/x"}]}`)
	if got := StoredResultMAC(res, "eth0"); got != "0a:58:0a:1e:00:02" {
		t.Errorf("StoredResultMAC = %q", got)
	}
	for _, c := range [][2]string{{string(res), "eth1"}, {`{"cniVersion":"0.2.0","ip4":{}}`, "eth0"}, {"garbage", "eth0"}} {
		if got := StoredResultMAC([]byte(c[0]), c[1]); got != "" {
			t.Errorf("StoredResultMAC(%s, %s) = %q, want none", c[0], c[1], got)
		}
	}
}
