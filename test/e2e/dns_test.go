package e2e

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// serveDNS answers A queries for name with addr on udp listen:53 until the
// test ends, and counts the queries for name it answered.
func serveDNS(t *testing.T, listen netip.Addr, name string, addr netip.Addr) *atomic.Int32 {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(listen, 53).String())
	if err != nil {
		t.Fatalf("fake upstream DNS server: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	var hits atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if strings.EqualFold(q.Name.String(), name+".") {
				hits.Add(1)
				if q.Type == dnsmessage.TypeA {
					b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: addr.As4()})
				}
			}
			if msg, err := b.Finish(); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return &hits
}

// TestDNSOption: --dns on a docker-cni network behaves as on Docker's bridge
// networks: the embedded DNS server answers container names and forwards
// other names to the --dns server. The upstream server here is the test's
// own, on the network's bridge gateway; the answer is a test address that
// nothing is sent to.
func TestDNSOption(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "dnsopt")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(29))
		gw := netip.MustParseAddr(strings.TrimSuffix(e.subnet(29), "0/24") + "1")
		srv, cli := name+"-srv", name+"-cli"
		// The chain gives the bridge its gateway address at the first ADD.
		e.container(t, srv, "--network", name)
		hits := serveDNS(t, gw, "e2e-upstream.test", netip.MustParseAddr("10.231.255.77"))
		e.container(t, cli, "--network", name, "--dns", gw.String())
		if out := e.must(t, "inspect", "-f", "{{.HostConfig.Dns}}", cli); out != "["+gw.String()+"]" {
			t.Errorf("docker inspect HostConfig.Dns = %s", out)
		}
		resolv := e.must(t, "exec", cli, "cat", "/etc/resolv.conf")
		if !strings.Contains(resolv, "nameserver 127.0.0.11") {
			t.Errorf("resolv.conf does not use the embedded DNS server:\n%s", resolv)
		}
		out, err := e.docker("exec", cli, "nslookup", "e2e-upstream.test")
		if err != nil || !strings.Contains(out, "10.231.255.77") {
			t.Errorf("nslookup e2e-upstream.test through --dns %s: %v\n%s", gw, err, out)
		}
		if hits.Load() == 0 {
			t.Errorf("the --dns server got no query")
		}
		// Container names still come from the embedded server.
		if out, err := e.docker("exec", cli, "nslookup", srv); err != nil || !strings.Contains(out, e.inspectIP(t, srv, name)) {
			t.Errorf("nslookup %s: %v\n%s", srv, err, out)
		}
	})
}
