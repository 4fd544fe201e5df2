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
	for _, c := range []struct {
		mode             JoinMode
		addName, nameNow string
		want             bool
	}{
		{JoinDirect, "eth1", "eth1", true},
		{JoinHandover, "eth0", "eth0", true},
		// Docker 20.10 on docker network connect: libnetwork named it.
		{JoinHandover, "eth0", "eth1", false},
		// Gone from the netns: CHECK says so.
		{JoinHandover, "eth0", "", true},
		{JoinDirect, "net1", "", true},
		{JoinMove, "eth0", "eth0", false},
		{"", "eth0", "eth0", false},
	} {
		if got := Checkable(c.mode, c.addName, c.nameNow); got != c.want {
			t.Errorf("Checkable(%q, %q, %q) = %v, want %v", c.mode, c.addName, c.nameNow, got, c.want)
		}
	}
}
