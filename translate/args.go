package translate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Container labels docker-cni reads for CNI_ARGS.
const (
	LabelPodName      = "io.kubernetes.pod.name"
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	LabelPodUID       = "io.kubernetes.pod.uid"
	// LabelCNIArgs holds extra CNI_ARGS, "KEY=value;KEY2=value2".
	LabelCNIArgs = "cni.args"
)

// Identity is what docker-cni knows of a container at Join.
type Identity struct {
	// Name is the container name, when the engine sent it.
	Name string
	// ContainerID is the Docker container ID, when known.
	ContainerID string
	Labels      map[string]string
}

var argKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedArgs are set by docker-cni itself; labels set them by their own
// io.kubernetes.* names instead.
var reservedArgs = map[string]bool{
	"IgnoreUnknown": true, "K8S_POD_NAME": true, "K8S_POD_NAMESPACE": true,
	"K8S_POD_INFRA_CONTAINER_ID": true, "K8S_POD_UID": true,
}

// CNIArgs builds the CNI_ARGS of a Join: IgnoreUnknown=1 (so that plugins
// reading none of them run), then, where the network sends pod identity
// (na.Identity "k8s"), Kubernetes-style pod identity so that plugins reading
// it accept Docker containers (from the io.kubernetes.pod.* labels where
// given, else the container name and the default namespace), then the
// network's -o cni.args pairs, then the container's cni.args label pairs
// (a key in both: the label's value).
func CNIArgs(id Identity, endpointID, defaultNamespace string, na NetworkArgs) ([][2]string, error) {
	args := [][2]string{{"IgnoreUnknown", "1"}}
	if na.Identity != ArgsNone {
		args = append(args, podArgs(id, endpointID, defaultNamespace)...)
	}
	for _, a := range args {
		if err := checkArgValue(a[0], a[1]); err != nil {
			return nil, err
		}
	}
	extra, err := ParseArgsLabel(id.Labels[LabelCNIArgs])
	if err != nil {
		return nil, err
	}
	fromLabel := map[string]bool{}
	for _, kv := range extra {
		fromLabel[kv[0]] = true
	}
	for _, kv := range na.Pairs {
		if !fromLabel[kv[0]] {
			args = append(args, kv)
		}
	}
	return append(args, extra...), nil
}

// podArgs is the K8S_POD_* identity of a container.
func podArgs(id Identity, endpointID, defaultNamespace string) [][2]string {
	ns := id.Labels[LabelPodNamespace]
	if ns == "" {
		ns = defaultNamespace
	}
	name := id.Labels[LabelPodName]
	if name == "" {
		name = id.Name
	}
	if name == "" {
		name = "docker-" + ShortID(endpointID)
	}
	infra := id.ContainerID
	if infra == "" {
		infra = endpointID
	}
	args := [][2]string{
		{"K8S_POD_NAMESPACE", ns},
		{"K8S_POD_NAME", name},
		{"K8S_POD_INFRA_CONTAINER_ID", infra},
	}
	if uid := id.Labels[LabelPodUID]; uid != "" {
		args = append(args, [2]string{"K8S_POD_UID", uid})
	}
	return args
}

func checkArgValue(k, v string) error {
	if strings.ContainsAny(v, ";=\n\x00") {
		return fmt.Errorf("CNI arg %s: value %q must not hold ';', '=', a newline or a NUL", k, v)
	}
	return nil
}

// ParseArgsLabel validates and parses the cni.args label.
func ParseArgsLabel(s string) ([][2]string, error) {
	_, pairs, err := parseArgList(s, "label "+LabelCNIArgs, false)
	return pairs, err
}

// OptArgs is the -o option giving a network's CNI_ARGS (NetworkArgs).
const OptArgs = "cni.args"

// Words of -o cni.args: whether containers get K8S_POD_* identity.
const (
	ArgsK8s  = "k8s"
	ArgsNone = "none"
)

// NetworkArgs are the CNI_ARGS a network gives every container, from -o
// cni.args="k8s|none;KEY=value;...": whether they get Kubernetes-style pod
// identity (Identity "k8s" or "none"; "" until ArgsFor decides it for the
// chain) and pairs they all get.
type NetworkArgs struct {
	Identity string      `json:",omitempty"`
	Pairs    [][2]string `json:",omitempty"`
}

// ParseNetworkArgs parses -o cni.args: items separated by ';', each the
// word k8s or none (at most one) or KEY=value.
func ParseNetworkArgs(s string) (NetworkArgs, error) {
	word, pairs, err := parseArgList(s, "option "+OptArgs, true)
	return NetworkArgs{Identity: word, Pairs: pairs}, err
}

// ArgsFor decides a network's args for its chain: pod identity, unless a
// plugin of the chain looks the pod up when given it, where -o cni.args=k8s
// is refused with the reason.
func (pl *ParsedList) ArgsFor(na NetworkArgs) (NetworkArgs, error) {
	plugin, why := pl.PodLookup()
	switch {
	case plugin == "" && na.Identity == "":
		na.Identity = ArgsK8s
	case plugin != "" && na.Identity == "":
		na.Identity = ArgsNone
	case plugin != "" && na.Identity == ArgsK8s:
		return na, fmt.Errorf("-o %s=%s: CNI network %q runs %s, which looks the pod up when CNI_ARGS carry K8S_POD_NAMESPACE and K8S_POD_NAME: %s. "+
			"A Docker container is no pod: its containers get no K8S_POD_* args here (-o %s=%s, the default for this network)", OptArgs, ArgsK8s, pl.Name, plugin, why, OptArgs, ArgsNone)
	}
	return na, nil
}

// parseArgList parses "item;item;...": KEY=value pairs (sorted by key) and,
// where words is true, at most one of the words k8s and none.
func parseArgList(s, what string, words bool) (word string, pairs [][2]string, err error) {
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ";") {
		w := strings.TrimSpace(kv)
		if w == "" {
			continue
		}
		if words && (w == ArgsK8s || w == ArgsNone) {
			if word != "" {
				return "", nil, fmt.Errorf("%s: give one of %s and %s, once", what, ArgsK8s, ArgsNone)
			}
			word = w
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok && words:
			return "", nil, fmt.Errorf("%s: %q is neither %s, %s nor KEY=value", what, kv, ArgsK8s, ArgsNone)
		case !ok:
			return "", nil, fmt.Errorf("%s: %q is not KEY=value", what, kv)
		case !argKey.MatchString(k):
			return "", nil, fmt.Errorf("%s: %q is not a valid CNI arg name", what, k)
		case reservedArgs[k] && words:
			return "", nil, fmt.Errorf("%s: %s is set by docker-cni (-o %s=%s sends K8S_POD_* identity, from the %s, %s and %s labels)", what, k, OptArgs, ArgsK8s, LabelPodName, LabelPodNamespace, LabelPodUID)
		case reservedArgs[k]:
			return "", nil, fmt.Errorf("%s: %s is set by docker-cni (use the %s, %s or %s labels)", what, k, LabelPodName, LabelPodNamespace, LabelPodUID)
		case seen[k]:
			return "", nil, fmt.Errorf("%s: %s given twice", what, k)
		}
		if err := checkArgValue(k, v); err != nil {
			return "", nil, fmt.Errorf("%s: %w", what, err)
		}
		seen[k] = true
		pairs = append(pairs, [2]string{k, v})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	return word, pairs, nil
}
