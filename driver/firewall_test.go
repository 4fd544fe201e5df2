package driver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/translate"
)

// recordingFW is a Firewall that keeps the rules in place by chain.
type recordingFW struct {
	mu    sync.Mutex
	rules map[string]bool
}

func (f *recordingFW) key(chain string, r translate.AcceptRule) string {
	if r.Chain != "" {
		chain = r.Chain
	}
	return fmt.Sprintf("%v %s %s %s", r.V6, r.Table, chain, strings.Join(r.Args, " "))
}

func (f *recordingFW) Ensure(ctx context.Context, chain string, rules []translate.AcceptRule) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rules {
		f.rules[f.key(chain, r)] = true
	}
	return true, nil
}

// RemoveTagged removes the rules whose args carry the comment tag.
func (f *recordingFW) RemoveTagged(ctx context.Context, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.rules {
		if strings.Contains(k, "--comment "+tag+" ") || strings.HasSuffix(k, "--comment "+tag) {
			delete(f.rules, k)
		}
	}
	return nil
}

func (f *recordingFW) Remove(ctx context.Context, chain string, rules []translate.AcceptRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rules {
		delete(f.rules, f.key(chain, r))
	}
	return nil
}

// TestGeneratedNetworkRules: a generated network gets its forward accepts
// and masquerade once, from docker-cni, recorded with the network and
// removed with it; the chain itself masquerades nothing.
func TestGeneratedNetworkRules(t *testing.T) {
	e := newEnv(t)
	fw := &recordingFW{rules: map[string]bool{}}
	e.d.fw = fw
	e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), map[string]any{})
	nw := e.network(netID(1))
	if len(nw.Rules) != 3 || len(fw.rules) != 3 {
		t.Fatalf("rules recorded %+v, installed %v; want 2 forward accepts and a masquerade", nw.Rules, fw.rules)
	}
	masq := false
	for k := range fw.rules {
		masq = masq || strings.Contains(k, "nat "+translate.PostroutingChain+" -s 10.30.0.0/24 ! -o "+nw.BridgeName+" -j MASQUERADE")
	}
	if !masq {
		t.Errorf("no masquerade of the subnet among %v", fw.rules)
	}
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(1)}); err != nil {
		t.Fatal(err)
	}
	if len(fw.rules) != 0 {
		t.Errorf("rules left after the network: %v", fw.rules)
	}
}

// TestBoundNetworkRulesCalicoPool: a network bound to a conflist whose
// IPAM plugin does not state its ranges (calico-ipam) accepts its Docker
// subnet in DOCKER-USER, the only range docker-cni knows of it.
func TestBoundNetworkRulesCalicoPool(t *testing.T) {
	e := newEnv(t)
	fw := &recordingFW{rules: map[string]bool{}}
	e.d.fw, e.d.cfg.DockerUserRules = fw, true
	e.calicoEndpoint(`"datastore_type":"etcdv3","etcd_endpoints":"http://127.0.0.1:23790",`, map[string]any{})
	want := []string{
		"false  " + translate.DockerUserChain + " -s 10.248.0.0/16 -m comment --comment docker-cni network a10001ffffff -j ACCEPT",
		"false  " + translate.DockerUserChain + " -d 10.248.0.0/16 -m comment --comment docker-cni network a10001ffffff -j ACCEPT",
	}
	for _, w := range want {
		if !fw.rules[w] {
			t.Errorf("rule %q not installed; installed: %v", w, fw.rules)
		}
	}
}
