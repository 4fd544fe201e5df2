package translate

import (
	"fmt"
	"slices"
)

// What docker-cni knows of pod networks that need more than a conflist:
// plugins that hand the container to a node agent (refused), plugins that
// look the pod up in Kubernetes when given K8S_POD_* args (containers get
// none), and Calico on the Kubernetes datastore, whose main plugin docker-cni
// replaces with a routed one that needs no pod.

// Plugin types of Calico's CNI plugin, one binary picked by its name.
const (
	CalicoType     = "calico"
	CalicoIPAMType = "calico-ipam"
)

// agentPlugin is a main plugin that hands the container to an agent.
type agentPlugin struct {
	// network names the pod network; does says what the agent does at ADD;
	// needs what docker-cni would need to serve containers on it.
	network, does, needs string
}

// agentPlugins are main plugins whose ADD asks a node agent, which gives
// the address and builds the endpoint from the pod it reads in Kubernetes.
var agentPlugins = map[string]agentPlugin{
	"cilium-cni": {"Cilium",
		"cilium-cni asks the Cilium agent, which allocates the address at ADD (its own IPAM) and derives the endpoint's security identity from the pod's labels in Kubernetes",
		"an agent API that creates endpoints for workloads that are not pods"},
	"antrea": {"Antrea",
		"the antrea plugin forwards ADD over gRPC to antrea-agent, which creates the OVS port, runs the IPAM itself and keys the interface and its network policy by the pod's namespace and name",
		"an antrea-agent API for interfaces that belong to no pod"},
	"kube-ovn": {"Kube-OVN",
		"the kube-ovn plugin asks the kube-ovn-cni daemon, which waits for the address, MAC and gateway kube-ovn-controller writes into the pod's annotations",
		"a Kube-OVN address allocated for something that is not a pod"},
	"ovn-k8s-cni-overlay": {"OVN-Kubernetes",
		"ovn-k8s-cni-overlay asks ovnkube-node, which waits for the address and routes ovnkube-controller writes into the pod's annotations",
		"an OVN logical port for something that is not a pod"},
	"aws-cni": {"Amazon VPC CNI",
		"aws-cni asks ipamd (aws-node) over gRPC, which hands out a secondary address of the node's ENIs and records it for the pod",
		"an ipamd API for workloads that are not pods"},
}

// agentError refuses a chain whose main plugin is an agent's, naming why.
func agentError(pl *ParsedList, typ string) error {
	a := agentPlugins[typ]
	return fmt.Errorf("CNI network %q is %s's: %s. A Docker container is no pod, and docker-cni reserves its address before it exists, so it cannot join %s; that would take %s",
		pl.Name, a.network, a.does, a.network, a.needs)
}

// podLookup are plugin types (main or IPAM) that look the pod up in
// Kubernetes, or record it, when CNI_ARGS carry K8S_POD_NAMESPACE and
// K8S_POD_NAME: Docker containers on their networks get no K8S_POD_* args.
var podLookup = map[string]string{
	CalicoType:     "calico takes its Kubernetes path with them: it needs a Kubernetes client, reads the Pod (policy type k8s) and, on the Kubernetes datastore, patches it (pods \"...\" not found)",
	CalicoIPAMType: "calico-ipam records the pod on the allocation, and Calico's kube-controllers release the allocations of pods that do not exist (after about 15 minutes), so the container would lose its address to a pod",
}

func init() {
	for typ, a := range agentPlugins {
		podLookup[typ] = a.does
	}
}

// PodLookup names the first plugin of the chain (or IPAM plugin of one of
// its plugins) that looks the pod up when given K8S_POD_* args, and why;
// "" when none does.
func (pl *ParsedList) PodLookup() (plugin, why string) {
	for _, t := range pl.allTypes() {
		if why, ok := podLookup[t]; ok {
			return t, why
		}
	}
	return "", ""
}

// allTypes lists the chain's plugin types and its ipam sections' types, as
// the conflist (before any substitution) has them.
func (pl *ParsedList) allTypes() []string {
	ts := slices.Clone(pl.origTypes)
	for _, p := range pl.plugins {
		ipam, _ := p["ipam"].(map[string]any)
		if t, _ := ipam["type"].(string); t != "" {
			ts = append(ts, t)
		}
	}
	return ts
}

// CalicoDatastore is the datastore a calico plugin configuration uses, as
// Calico decides it: datastore_type, else etcdv3 when etcd endpoints (or
// their discovery) are given, else kubernetes.
func CalicoDatastore(conf map[string]any) string {
	if t, _ := conf["datastore_type"].(string); t != "" {
		return t
	}
	for _, k := range []string{"etcd_endpoints", "etcd_discovery_srv"} {
		if s, _ := conf[k].(string); s != "" {
			return "etcdv3"
		}
	}
	return "kubernetes"
}

// SubstitutedCalicoKDD names the substitution ParseList makes for Calico on
// the Kubernetes datastore.
const SubstitutedCalicoKDD = "calico-kdd-ptp"

// substituteCalicoKDD replaces a calico main plugin on the Kubernetes
// datastore, which patches the Pod at ADD and so cannot serve a container
// that is no pod, with ptp: the same routed shape Calico gives pods (a veth
// with the host end routed to the address). The ipam section and Calico's
// top-level keys stay on it, so the address is reserved by the network's
// own IPAM plugin with Calico's datastore settings (ptp ignores them); Join
// hands ptp that address through static IPAM. ptp and calico-ipam cannot
// share one chain (calico-ipam gives no gateway and a block route ptp
// refuses): the reservation runs calico-ipam on its own, as for every
// bound network.
func (pl *ParsedList) substituteCalicoKDD() {
	if pl.ipamIndex < 0 {
		return
	}
	main := pl.plugins[pl.ipamIndex]
	if t, _ := main["type"].(string); t != CalicoType || CalicoDatastore(main) != "kubernetes" {
		return
	}
	ptp := make(map[string]any, len(main))
	for k, v := range main {
		ptp[k] = v
	}
	ptp["type"] = "ptp"
	// ptp must not masquerade: Calico pods are reached without NAT.
	delete(ptp, "ipMasq")
	if ipam, ok := main["ipam"].(map[string]any); ok {
		ptp["ipam"] = withCalicoRoutes(ipam)
	}
	pl.plugins[pl.ipamIndex] = ptp
	pl.substitution = SubstitutedCalicoKDD
}

// withCalicoRoutes gives an ipam section that states no routes the default
// routes Calico gives pods (via the host end of the veth) for the families
// it assigns: calico-ipam reports none, ptp installs those of the section.
func withCalicoRoutes(ipam map[string]any) map[string]any {
	if _, has := ipam["routes"]; has {
		return ipam
	}
	out := make(map[string]any, len(ipam)+1)
	for k, v := range ipam {
		out[k] = v
	}
	var routes []any
	if v, _ := ipam["assign_ipv4"].(string); v != "false" {
		routes = append(routes, map[string]any{"dst": "0.0.0.0/0"})
	}
	if v, _ := ipam["assign_ipv6"].(string); v == "true" {
		routes = append(routes, map[string]any{"dst": "::/0"})
	}
	if routes != nil {
		out["routes"] = routes
	}
	return out
}

// Substitution names what docker-cni runs instead of the conflist's main
// plugin ("" when it runs the conflist as it is).
func (pl *ParsedList) Substitution() string {
	return pl.substitution
}

// OwnDefaultRoutes reports whether the chain's main plugin gives the
// container a default route of each family it has an address of, whatever
// its configuration says, and fails where the netns has one already
// ("file exists"): calico outside Kubernetes (0.0.0.0/0 via 169.254.1.1,
// ::/0 via the host end's link-local address). On the Kubernetes datastore
// ParseList has replaced it with ptp, whose routes come from its ipam
// section.
func (pl *ParsedList) OwnDefaultRoutes() bool {
	return pl.calicoRuns()
}

// RecordsMAC reports whether the chain's main plugin records the MAC it
// makes the container's interface with, where a MAC set later (by
// libnetwork, or a plugin after it) makes the record wrong: calico outside
// Kubernetes writes it into the WorkloadEndpoint, and felix programs a
// permanent neighbour entry for the container's address with it. On the
// Kubernetes datastore ParseList has replaced calico with ptp.
func (pl *ParsedList) RecordsMAC() bool {
	return pl.calicoRuns()
}

// calicoRuns: the chain's main plugin, as docker-cni runs it, is calico
// (outside Kubernetes: on its datastore ParseList has put ptp in its place).
func (pl *ParsedList) calicoRuns() bool {
	t, _ := pl.mainPlugin()["type"].(string)
	return t == CalicoType
}
