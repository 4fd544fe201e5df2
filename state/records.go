package state

import (
	"encoding/json"
	"time"
)

// Pool is an address pool handed to Docker by RequestPool.
type Pool struct {
	ID           string
	AddressSpace string
	// Subnet and Range (--ip-range, may be empty) are CIDRs.
	Subnet string
	Range  string `json:",omitempty"`
	V6     bool
	// Gateway is the pool's gateway address, without prefix length.
	Gateway string
	// CNINetwork is the name of the CNI network whose IPAM store the
	// addresses come from; Bound says it is a conflist of the conf dir.
	CNINetwork string
	Bound      bool
	// ConfFile is the bound conflist's path when the pool was made.
	ConfFile string `json:",omitempty"`
	// SubnetFile is the flannel subnet file a flannel network's pool is
	// derived from; reservations follow a new lease in it.
	SubnetFile string `json:",omitempty"`
	// GatewayFree says the CNI network does not state the gateway, so
	// Docker's --gateway decides it.
	GatewayFree bool `json:",omitempty"`
	// IPAMType is the IPAM plugin; CNIVersion the configuration's version.
	IPAMType   string
	CNIVersion string
	// IPAMConf is the network configuration the IPAM plugin is run with to
	// reserve and release this pool's addresses.
	IPAMConf json.RawMessage
	// NetworkID is set when CreateNetwork claims the pool.
	NetworkID string `json:",omitempty"`
	// Provisional says the pool was rebuilt from an engine's network
	// after docker-cni's records were lost, under an ID Docker does not
	// know: the first IPAM call naming this CNI network and subnet gives
	// it Docker's ID.
	Provisional bool `json:",omitempty"`
	Created     time.Time
}

// Reservation is an address reserved in a CNI IPAM store for Docker.
type Reservation struct {
	// Key is PoolID + "|" + Address; PutReservation sets it.
	Key     string
	PoolID  string
	Address string
	// OwnerID and IfName are the CNI container ID and interface name the
	// address is reserved under in the IPAM store.
	OwnerID string
	IfName  string
	// Name is the container name, when the engine sent it.
	Name string `json:",omitempty"`
	// Gateway is the gateway the IPAM plugin returned with the address, if
	// any.
	Gateway string `json:",omitempty"`
	Created time.Time
}

// Network is a Docker network served by the cni driver.
type Network struct {
	ID string
	// CNINetwork is the conflist name; Bound says it lives in the conf dir
	// (else docker-cni generated it).
	CNINetwork string
	Bound      bool
	ConfFile   string `json:",omitempty"`
	CNIVersion string
	// VersionOption is the -o cni.version the network was created with,
	// if any. docker network inspect shows it, so a bound network never
	// takes a changed conflist that declares another version.
	VersionOption string `json:",omitempty"`
	// Conflist is the chain as it was when the network was made.
	Conflist json.RawMessage
	// PoolIDs are docker-cni's pools; empty when Docker's IPAM serves it.
	PoolIDs    []string `json:",omitempty"`
	DockerIPAM bool
	// Gateways are the per-family gateways the static IPAM override uses.
	Gateways []string `json:",omitempty"`
	Internal bool
	// JoinMode is the -o cni.join mode ("" is handover where the engine
	// allows it).
	JoinMode string `json:",omitempty"`
	// ArgsIdentity and Args are the -o cni.args the network was created
	// with: "k8s", "none" or "" (decided by the chain at each Join), and
	// the KEY=value pairs every container gets.
	ArgsIdentity string      `json:",omitempty"`
	Args         [][2]string `json:",omitempty"`
	// BridgeName is the bridge of a generated network; OwnsBridge says
	// docker-cni's chain made it (it did not exist at create), so it is
	// removed with the network.
	BridgeName string `json:",omitempty"`
	OwnsBridge bool   `json:",omitempty"`
	// Rules are the host firewall rules installed for the network, as
	// installed: what is removed with it, whatever the configuration says
	// by then.
	Rules   []Rule `json:",omitempty"`
	Created time.Time
}

// Rule is one iptables rule (without verb) docker-cni installed, whether
// it is for ip6tables, and its table and chain ("": filter, DOCKER-USER).
type Rule struct {
	V6           bool
	Table, Chain string `json:",omitempty"`
	Args         []string
}

// Endpoint is a Docker endpoint and, once joined, its CNI attachment.
type Endpoint struct {
	ID        string
	NetworkID string
	// Name and ContainerID identify the endpoint's container, from IPAM
	// (newer engines) or learnt from the engines in the background.
	Name        string `json:",omitempty"`
	ContainerID string `json:",omitempty"`
	// Addresses are the CIDRs Docker's IPAM gave the endpoint.
	Addresses []string
	MAC       string `json:",omitempty"`
	// IfName is the interface name the endpoint asked for
	// (com.docker.network.endpoint.ifname), if any.
	IfName string `json:",omitempty"`
	// Gateways are the gateways the IPAM plugin returned with Addresses,
	// where it returned any.
	Gateways []string `json:",omitempty"`
	// PortBindings is Docker's com.docker.network.portmap option, as sent.
	PortBindings json.RawMessage `json:",omitempty"`
	Created      time.Time

	// Attachment is set by Join and cleared when DEL succeeds, at LeftAt.
	Attachment *Attachment `json:",omitempty"`
	LeftAt     time.Time   `json:",omitempty"`
	// Leftover is why the endpoint could not be torn down when Docker
	// dropped it (its DEL failed): it is retried at RetryAt, with a backoff
	// that grows with Retries, and reported until it succeeds.
	Leftover string    `json:",omitempty"`
	Retries  int       `json:",omitempty"`
	RetryAt  time.Time `json:",omitempty"`
}

// Attachment is everything CNI DEL needs, recorded at ADD.
type Attachment struct {
	Mode       string
	SandboxKey string
	// NetNS is the netns the chain ran in (the sandbox, or a scratch netns).
	NetNS       string
	ScratchNS   string `json:",omitempty"`
	ContainerID string
	IfName      string
	// HostIfName is the interface's temporary name in the host netns while
	// it waits for libnetwork to move it (move mode).
	HostIfName string `json:",omitempty"`
	// MAC is the hardware address of the interface the chain made.
	MAC        string         `json:",omitempty"`
	Args       [][2]string    `json:",omitempty"`
	Capability map[string]any `json:",omitempty"`
	// Conflist is the exact list ADD ran (with the static IPAM override).
	Conflist json.RawMessage
	Result   json.RawMessage `json:",omitempty"`
	// Published is the CNI portMappings published for this attachment.
	Published json.RawMessage `json:",omitempty"`
	// OwnPortMap says docker-cni publishes ports with a portmap of its own
	// (the chain, generated, has none).
	OwnPortMap bool `json:",omitempty"`
	// SkipReclaim says DEL runs without the interface (no plugin of the
	// chain needs it) instead of reclaiming it into a scratch netns.
	SkipReclaim bool `json:",omitempty"`
	Added       time.Time
}

// HostPort is one host port published by an endpoint's attachment: the unit
// of the ports index.
type HostPort struct {
	// Proto is the protocol as the port mapping names it ("tcp", "udp",
	// "sctp"); HostIP is "" when the mapping binds every address.
	Proto  string
	HostIP string
	Port   int
}

// Intent is a side effect docker-cni is about to make outside its own
// state (an address reserved in a CNI IPAM store), recorded before it is
// made and removed once its result is recorded: one left over after a
// crash or a timeout says what to undo.
type Intent struct {
	// ID is the key: the owner ID of a reservation.
	ID string
	// Kind is what is intended: IntentReserve.
	Kind string
	// PoolID, and IfName with ID, are what a reservation is made under;
	// IPAMType and IPAMConf what undoes it, even once the pool is gone.
	PoolID   string
	IfName   string
	IPAMType string
	IPAMConf json.RawMessage
	Created  time.Time
}

// IntentReserve is an address reservation in a pool's IPAM store.
const IntentReserve = "reserve"
