package translate_test

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"sort"
	"testing"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/translate"
)

// FuzzPortBindings reads a fuzzed com.docker.network.portmap option (seeded
// with what real engines sent) and plans host ports for it on a host where
// fuzzed ports are taken: published by docker-cni already, or bound by some
// other program. Nothing may panic. A plan that succeeds:
//   - maps every binding, each to a host port in 1-65535 of its own choice
//     (the port given, within the range given, or Docker's ephemeral range
//     when it left the choice to the driver), with its container port,
//     protocol and host IP, sorted by host port;
//   - takes no host port that clashes with another of the plan or with one
//     docker-cni published (same protocol and port, and the same host
//     address or either one a wildcard of its family: both would forward
//     the same packets), and none the host reports busy.
func FuzzPortBindings(f *testing.F) {
	for _, o := range append(traceOptions(f, "NetworkDriver.Join"), traceOptions(f, "NetworkDriver.ProgramExternalConnectivity")...) {
		var opts map[string]json.RawMessage
		if err := json.Unmarshal(o, &opts); err != nil {
			f.Fatal(err)
		}
		if pm := opts[cnm.OptPortMap]; pm != nil {
			f.Add([]byte(pm), []byte{0, 0x1f, 0x90})
		}
	}
	for _, s := range []string{
		`[{"Proto":6,"Port":80,"HostPort":0},{"Proto":17,"Port":53,"HostPort":0}]`,
		`[{"Proto":6,"Port":80,"HostIP":"127.0.0.1","HostPort":8080,"HostPortEnd":8090},{"Proto":17,"Port":81,"HostPort":8080,"HostPortEnd":8090}]`,
		`[{"Proto":132,"Port":9,"HostIP":"::1","HostPort":9000,"HostPortEnd":9000}]`,
		`[{"Proto":132,"Port":9,"HostPort":1,"HostPortEnd":3},{"Proto":17,"Port":9,"HostIP":"10.0.0.1","HostPort":0,"HostPortEnd":0}]`,
		`[{"Proto":6,"Port":80,"HostIP":"0.0.0.0","HostPort":8080},{"Proto":6,"Port":80,"HostIP":"::","HostPort":8080}]`,
	} {
		f.Add([]byte(s), []byte{1, 0x1f, 0x90, 0x0a, 0xc0, 0x01})
	}

	f.Fuzz(func(t *testing.T, portmap, ports []byte) {
		var raw any
		if err := json.Unmarshal(portmap, &raw); err != nil {
			return
		}
		bs, err := translate.ParsePortBindings(map[string]any{cnm.OptPortMap: raw})
		if err != nil || len(bs) > 16 {
			return
		}
		taken, busy := hostPorts(ports)
		free := func(k translate.PortKey) bool {
			if k.Proto == "sctp" {
				return true // as sandbox.HostPortFree: no socket to try
			}
			if k.Port < 0 || k.Port > 65535 {
				return false // the socket would not bind
			}
			for _, b := range busy {
				if clash(k, b) {
					return false
				}
			}
			return true
		}
		out, err := translate.PlanPorts(bs, taken, free)
		if err != nil {
			return
		}
		if len(out) != len(bs) || !sort.SliceIsSorted(out, func(i, j int) bool { return out[i].HostPort < out[j].HostPort }) {
			t.Fatalf("bindings %+v planned as %v: want one mapping each, sorted by host port", bs, out)
		}
		for i, m := range out {
			k := translate.PortKey{Proto: m.Protocol, HostIP: m.HostIP, Port: m.HostPort}
			if m.HostPort < 1 || m.HostPort > 65535 || m.ContainerPort < 1 || m.ContainerPort > 65535 {
				t.Fatalf("bindings %+v planned as %v: %s is not a port mapping", bs, out, m)
			}
			if !free(k) {
				t.Fatalf("bindings %+v planned as %v: %s is busy on the host", bs, out, m)
			}
			for tk := range taken {
				if clash(k, tk) {
					t.Fatalf("bindings %+v planned as %v: %s clashes with %+v, published already", bs, out, m, tk)
				}
			}
			for _, o := range out[i+1:] {
				if clash(k, translate.PortKey{Proto: o.Protocol, HostIP: o.HostIP, Port: o.HostPort}) {
					t.Fatalf("bindings %+v planned as %v: %s and %s clash", bs, out, m, o)
				}
			}
		}
		used := make([]bool, len(out))
	bindings:
		for _, b := range bs {
			lo, hi := b.HostPort, b.HostPortEnd
			switch {
			case lo == 0:
				lo, hi = translate.EphemeralFirst, translate.EphemeralLast
			case hi < lo:
				hi = lo
			}
			for i, m := range out {
				if !used[i] && m.ContainerPort == b.Port && m.Protocol == protoName[b.Proto] && m.HostIP == b.HostIP && m.HostPort >= lo && m.HostPort <= hi {
					used[i] = true
					continue bindings
				}
			}
			t.Fatalf("bindings %+v planned as %v: none for %+v (host port %d-%d)", bs, out, b, lo, hi)
		}
	})
}

var protoName = map[int]string{6: "tcp", 17: "udp", 132: "sctp"}

// hostPorts reads fuzz bytes as 3-byte entries: a kind byte (bit 0: taken
// by docker-cni, else busy on the host; bits 1-2: the protocol; bits 3-4:
// the host address) and a big-endian port.
func hostPorts(b []byte) (taken map[translate.PortKey]bool, busy []translate.PortKey) {
	protos := []string{"tcp", "udp", "sctp", "tcp"}
	ips := []string{"", "127.0.0.1", "0.0.0.0", "::"}
	taken = map[translate.PortKey]bool{}
	for ; len(b) >= 3; b = b[3:] {
		k := translate.PortKey{Proto: protos[b[0]>>1&3], HostIP: ips[b[0]>>3&3], Port: int(binary.BigEndian.Uint16(b[1:3]))}
		if b[0]&1 != 0 {
			taken[k] = true
		} else {
			busy = append(busy, k)
		}
	}
	return taken, busy
}

// clash: two host ports forward the same packets.
func clash(a, b translate.PortKey) bool {
	if a.Proto != b.Proto || a.Port != b.Port {
		return false
	}
	if a.HostIP == "" || b.HostIP == "" || a.HostIP == b.HostIP {
		return true
	}
	x, errX := netip.ParseAddr(a.HostIP)
	y, errY := netip.ParseAddr(b.HostIP)
	if errX != nil || errY != nil {
		return false
	}
	x, y = x.Unmap(), y.Unmap()
	return x == y || (x.Is4() == y.Is4() && (x.IsUnspecified() || y.IsUnspecified()))
}
