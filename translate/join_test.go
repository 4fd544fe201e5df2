package translate_test

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/translate"
)

// TestPlanJoin: request.json holds a stored network and endpoint, the
// sandbox facts the edges observed and the host's facts; the golden is the
// plan and the Join response for the result a chain gives for that plan
// (the plan's addresses and routes on its interface, as the reference
// plugins report them), or the error.
func TestPlanJoin(t *testing.T) {
	runGolden(t, "planjoin", func(t *testing.T, req []byte) (string, []byte) {
		// OnLink are the routes without gateway the chain left on the
		// interface; by default, each address's subnet (a bridge).
		var r planJoinRequest
		decodeStrict(t, req, &r)
		plan, err := translate.PlanJoin(r.Network, r.Endpoint, r.Sandbox, r.Host)
		if err != nil {
			return errorGolden(t, err)
		}
		if r.OnLink == nil {
			for _, a := range plan.Addresses {
				r.OnLink = append(r.OnLink, a.Address.Masked())
			}
		}
		res := chainResult(t, plan)
		if r.Result != nil {
			res = &current.Result{}
			if err := json.Unmarshal(r.Result, res); err != nil {
				t.Fatalf("result: %v", err)
			}
		}
		if err := translate.CheckAddresses(res, plan); err != nil {
			t.Errorf("CheckAddresses of the plan's own result: %v", err)
		}
		resp, err := translate.JoinResponse(plan, res, translate.LinkRoutes{OnLink: r.OnLink, Gateway4: r.Gateway4})
		if err != nil {
			return errorGolden(t, err)
		}
		var pretty struct {
			Plan     translate.JoinPlan
			Response *cnm.JoinResponse
		}
		pretty.Plan, pretty.Response = plan, resp
		b, err := json.MarshalIndent(pretty, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return "want.json", b
	})
}

// chainResult is what the reference plugins report for a plan: the
// container interface in the plan's netns with the static addresses, and
// the routes of the static IPAM section.
func chainResult(t *testing.T, p translate.JoinPlan) *current.Result {
	t.Helper()
	res := &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{
		{Name: "br0", Mac: "9a:3e:1b:aa:00:01"},
		{Name: p.IfName, Mac: "02:42:0a:63:00:02", Sandbox: p.NetNS},
	}}
	for _, a := range p.Addresses {
		idx := 1
		ipc := &current.IPConfig{Interface: &idx, Address: net.IPNet{IP: a.Address.Addr().AsSlice(), Mask: net.CIDRMask(a.Address.Bits(), a.Address.Addr().BitLen())}}
		if a.Gateway.IsValid() {
			ipc.Gateway = a.Gateway.AsSlice()
		}
		res.IPs = append(res.IPs, ipc)
	}
	var list struct {
		Plugins []struct {
			IPAM struct {
				Routes []types.Route `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(p.Conflist, &list); err != nil {
		t.Fatalf("plan conflist: %v", err)
	}
	for _, pl := range list.Plugins {
		for i := range pl.IPAM.Routes {
			res.Routes = append(res.Routes, &pl.IPAM.Routes[i])
		}
	}
	if translate.ResultMAC(res, p.IfName) != "02:42:0a:63:00:02" {
		t.Errorf("ResultMAC does not find %s", p.IfName)
	}
	return res
}
