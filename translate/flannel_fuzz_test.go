package translate_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

// FuzzSubnetEnv reads arbitrary subnet file text, as flanneld writes it on
// a node, and gives what it accepts to each flannel conflist the repository
// holds. Nothing may panic. An accepted file has at least one network and
// one subnet, all masked; a flannel chain given it allocates from every one
// of its subnets, and the pool of a family it has a subnet of is one of
// them.
func FuzzSubnetEnv(f *testing.F) {
	for _, env := range seedSubnetEnvs(f) {
		f.Add([]byte(env))
	}
	for _, env := range []string{
		"FLANNEL_NETWORK=10.42.0.0/16,10.43.0.0/16\nFLANNEL_SUBNET=10.42.7.1/24\nFLANNEL_IPV6_NETWORK=fd00:42::/56\nFLANNEL_IPV6_SUBNET=fd00:42:0:7::1/64\n",
		"FLANNEL_NETWORK=10.42.0.0/16\r\nFLANNEL_SUBNET=10.42.7.1/24\r\nFLANNEL_MTU=x\r\n",
		"FLANNEL_IPV6_NETWORK=fd00:42::/56\nFLANNEL_IPV6_SUBNET=fd00:42:0:7::1/64\nFLANNEL_IPMASQ=false\n",
	} {
		f.Add([]byte(env))
	}
	var flannel [][]byte
	for _, c := range seedConflists(f) {
		if pl, err := translate.ParseList(c); err == nil {
			if _, ok := pl.FlannelSubnetFile(); ok {
				flannel = append(flannel, c)
			}
		}
	}
	if len(flannel) == 0 {
		f.Fatal("no flannel conflist among the seeds")
	}

	f.Fuzz(func(t *testing.T, text []byte) {
		env, err := translate.ParseSubnetEnv(text)
		if err != nil {
			return
		}
		if len(env.Networks) == 0 || len(env.Subnets) == 0 {
			t.Fatalf("ParseSubnetEnv accepted %q without a network or a subnet: %+v", text, env)
		}
		for _, p := range slices.Concat(env.Networks, env.Subnets) {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("ParseSubnetEnv(%q) holds %s, not a masked subnet", text, p)
			}
		}
		for _, c := range flannel {
			pl, err := translate.ParseList(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := pl.WithSubnetEnv(env); err != nil {
				continue
			}
			ipam, err := pl.IPAM()
			if err != nil {
				t.Fatalf("IPAM() after WithSubnetEnv: %v", err)
			}
			subnets := pl.Subnets()
			if ipam["type"] == "host-local" {
				for _, s := range env.Subnets {
					if !slices.Contains(subnets, s) {
						t.Fatalf("flannel chain %s given %+v allocates from %v, not from %s", pl.Name, env, subnets, s)
					}
				}
			}
			pl.HasDefaultRoute(false)
			pl.HasDefaultRoute(true)
			for _, v6 := range []bool{false, true} {
				bp, err := pl.BoundPoolFor(v6, netip.Prefix{})
				if err != nil {
					continue
				}
				checkPool(t, "BoundPoolFor", bp.Pool, v6)
				if ipam["type"] == "host-local" && !slices.Contains(subnets, bp.Pool.Subnet) {
					t.Fatalf("flannel chain %s given %+v: pool %s is none of its subnets %v", pl.Name, env, bp.Pool.Subnet, subnets)
				}
			}
		}
	})
}
