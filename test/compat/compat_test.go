package compat

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFull(t *testing.T) {
	cells := Full()
	if cells[0].Key() != Baseline.Key() {
		t.Errorf("first cell %s, want the baseline", cells[0].Key())
	}
	seen := map[string]bool{}
	for _, c := range cells {
		if seen[c.Key()] {
			t.Errorf("cell %s listed twice", c.Key())
		}
		seen[c.Key()] = true
		if len(c.Groups) == 0 {
			t.Errorf("cell %s has no group", c.Key())
		}
	}
	for _, c := range CISlice() {
		if !seen[c.Key()] {
			t.Errorf("CI slice cell %s is not in the full matrix", c.Key())
		}
	}
	// Every value of every dimension is tried on the baseline.
	for _, d := range dimensions {
		for _, v := range d.values {
			c := Baseline
			d.set(&c, v)
			if !seen[c.Key()] {
				t.Errorf("%s=%s: no cell", d.group, v)
			}
		}
	}
	// The baseline is in every dimension's table.
	for _, g := range []string{GroupBaseline, GroupEngine, GroupPlugins, GroupVersion, GroupMain, GroupIPAM, GroupChained, GroupRuntime, GroupCI} {
		if !slices.Contains(cells[0].Groups, g) {
			t.Errorf("baseline not in group %s: %v", g, cells[0].Groups)
		}
	}
	// 1 + (4-1) + (2-1) + (5-1) + (7-1) + (2-1) + (5-1) + (2-1) + upstream
	// x {0.3.0, 0.3.1, 0.4.0, 1.1.0} + firewall at 0.3.1 + upstream 1.1.0 on
	// containerd 2 + 3 new CI cells (upstream x 0.3.1 x macvlan, upstream x
	// 1.0.0 x macvlan, debian x 0.3.1 x macvlan) + the verbs cell + 4
	// compose.
	if want := 1 + 3 + 1 + 4 + 6 + 1 + 4 + 1 + 4 + 1 + 1 + 3 + 1 + 4; len(cells) != want {
		t.Errorf("%d cells, want %d", len(cells), want)
	}
}

func TestCISlice(t *testing.T) {
	cells := CISlice()
	if len(cells) != 9 {
		t.Fatalf("%d cells, want 9", len(cells))
	}
	if last := cells[8]; last.Key() != VerbsCell.Key() {
		t.Errorf("last CI cell %s, want the verbs cell %s", last.Key(), VerbsCell.Key())
	}
	for _, c := range cells[:8] {
		if c.Engine != EngineDebian || c.Client != ClientDocker || (c.Main != MainBridge && c.Main != MainMacvlan) {
			t.Errorf("unexpected CI cell %s", c.Key())
		}
	}
}

func TestCellFacts(t *testing.T) {
	c := Baseline
	if got := c.Chain(); !slices.Equal(got, []string{"bridge", "portmap"}) {
		t.Errorf("baseline chain %v", got)
	}
	c.Main, c.Chained = MainIPvlanL3, ChainSBR
	if got := c.Chain(); !slices.Equal(got, []string{"ipvlan", "portmap", "sbr"}) {
		t.Errorf("ipvlan+sbr chain %v", got)
	}
	if ok, why := c.PortsFromHost(); ok || !strings.Contains(why, "ipvlan-l3") {
		t.Errorf("ipvlan ports from host: %v %q", ok, why)
	}
	if ok, _ := Baseline.PortsFromHost(); !ok {
		t.Error("bridge ports from host: false")
	}
	c = Baseline
	c.IPAM = IPAMStatic
	if !c.OneAttachmentPerNetwork() || Baseline.OneAttachmentPerNetwork() {
		t.Error("OneAttachmentPerNetwork: static should, host-local should not")
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

func TestConflist(t *testing.T) {
	topo := Topology{
		Name: "cmp-net", Subnet: netip.MustParsePrefix("10.231.130.0/24"), Gateway: netip.MustParseAddr("10.231.130.1"),
		Bridge: "cmpbr0", Master: "cmppar0", Device: "cmpdev0", DataDir: "/tmp/x",
		Address: netip.MustParseAddr("10.231.130.11"),
	}
	b, err := Conflist(Baseline, topo)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "cniVersion": "1.0.0",
  "name": "cmp-net",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cmpbr0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [
            {
              "subnet": "10.231.130.0/24",
              "gateway": "10.231.130.1"
            }
          ]
        ],
        "routes": [
          {
            "dst": "0.0.0.0/0"
          }
        ],
        "dataDir": "/tmp/x"
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}`
	if string(b) != want {
		t.Errorf("baseline conflist:\n%s\nwant\n%s", b, want)
	}

	cases := []struct {
		mut   func(*Cell)
		check func(t *testing.T, m map[string]any)
	}{
		{func(c *Cell) { c.Main, c.IPAM = MainMacvlan, IPAMStatic }, func(t *testing.T, m map[string]any) {
			main := m["plugins"].([]any)[0].(map[string]any)
			if main["type"] != "macvlan" || main["master"] != "cmppar0" || main["mode"] != "bridge" {
				t.Errorf("macvlan: %v", main)
			}
			ipam := main["ipam"].(map[string]any)
			addr := ipam["addresses"].([]any)[0].(map[string]any)
			if ipam["type"] != "static" || addr["address"] != "10.231.130.11/24" || ipam["routes"] != nil {
				t.Errorf("static on macvlan: %v", ipam)
			}
		}},
		{func(c *Cell) { c.Main = MainIPvlanL3 }, func(t *testing.T, m map[string]any) {
			main := m["plugins"].([]any)[0].(map[string]any)
			if main["type"] != "ipvlan" || main["mode"] != "l3" {
				t.Errorf("ipvlan-l3: %v", main)
			}
		}},
		{func(c *Cell) { c.Main, c.Version = MainHostDevice, "0.3.0" }, func(t *testing.T, m map[string]any) {
			main := m["plugins"].([]any)[0].(map[string]any)
			if main["device"] != "cmpdev0" || m["cniVersion"] != "0.3.0" {
				t.Errorf("host-device: %v", m)
			}
		}},
		{func(c *Cell) { c.Chained = ChainTuning }, func(t *testing.T, m map[string]any) {
			ps := m["plugins"].([]any)
			if len(ps) != 3 || ps[2].(map[string]any)["mtu"] != float64(TuningMTU) {
				t.Errorf("tuning chain: %v", ps)
			}
		}},
		{func(c *Cell) { c.Chained = ChainBandwidth }, func(t *testing.T, m map[string]any) {
			bw := m["plugins"].([]any)[2].(map[string]any)
			if bw["type"] != "bandwidth" || bw["egressRate"] != float64(BandwidthRate) {
				t.Errorf("bandwidth: %v", bw)
			}
		}},
	}
	for _, tc := range cases {
		c := Baseline
		tc.mut(&c)
		b, err := Conflist(c, topo)
		if err != nil {
			t.Errorf("%s: %v", c.Key(), err)
			continue
		}
		tc.check(t, decode(t, b))
	}

	bad := Baseline
	bad.IPAM = IPAMStatic
	if _, err := Conflist(bad, Topology{Name: "x", Subnet: topo.Subnet}); err == nil {
		t.Error("static without an address: no error")
	}
	if _, err := Conflist(Baseline, Topology{Name: "x"}); err == nil {
		t.Error("no subnet: no error")
	}
}

func TestShort(t *testing.T) {
	if got := Short("  a\tb  \nsecond line"); got != "a b" {
		t.Errorf("Short: %q", got)
	}
	long := "head " + strings.Repeat("x", 400) + " tail"
	got := Short(long)
	if !strings.HasPrefix(got, "head ") || !strings.HasSuffix(got, " tail") || len([]rune(got)) > MaxReason+1 {
		t.Errorf("Short of a long message: %q (%d runes)", got, len([]rune(got)))
	}
}

func TestRender(t *testing.T) {
	full := Full()
	var rs []Result
	for _, c := range full {
		rs = append(rs, Result{Cell: c, Status: Pass})
	}
	rs[1].Status, rs[1].Reason = Fail, "docker run: exit 125 | bad"
	rs[2].Status, rs[2].Reason = Skip, "this kernel has no ipvlan"
	rs[0].Notes = []string{"-p n/a: nothing"}
	out := Render(Report{
		Generated: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Versions:  [][2]string{{"docker-cni", "abc"}},
		Results:   rs,
	})
	for _, want := range []string{
		"on 2026-11-30 12:00 (UTC)",
		"| docker-cni | abc |",
		`❌ docker run: exit 125 \| bad`,
		"⬜ this kernel has no ipvlan",
		"<br>-p n/a: nothing",
		"| **current** | debian | 1.0.0 |",
		"### CI slice",
		"### docker-compose",
		"CHECK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q", want)
		}
	}
	n := Counts(rs)
	if n[Pass] != len(rs)-2 || n[Fail] != 1 || n[Skip] != 1 {
		t.Errorf("counts %v", n)
	}
	if !strings.Contains(out, "cells: ✅ "+strconv.Itoa(len(rs)-2)+" pass") {
		t.Errorf("summary line wrong:\n%s", out[:400])
	}
	// Every row of a table has the header's column count.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 9 &&
			strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 3 {
			t.Errorf("ragged table row: %s", line)
		}
	}
}
