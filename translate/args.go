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

// CNIArgs builds the CNI_ARGS of a Join: Kubernetes-style pod identity so
// that plugins reading it accept Docker containers (from the
// io.kubernetes.pod.* labels where given, else the container name and the
// default namespace), then the extra args of the cni.args label.
// IgnoreUnknown=1 lets plugins that read none of them run.
func CNIArgs(id Identity, endpointID, defaultNamespace string) ([][2]string, error) {
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
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", ns},
		{"K8S_POD_NAME", name},
		{"K8S_POD_INFRA_CONTAINER_ID", infra},
	}
	if uid := id.Labels[LabelPodUID]; uid != "" {
		args = append(args, [2]string{"K8S_POD_UID", uid})
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
	return append(args, extra...), nil
}

func checkArgValue(k, v string) error {
	if strings.ContainsAny(v, ";=\n\x00") {
		return fmt.Errorf("CNI arg %s: value %q must not hold ';', '=', a newline or a NUL", k, v)
	}
	return nil
}

// ParseArgsLabel validates and parses the cni.args label.
func ParseArgsLabel(s string) ([][2]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			return nil, fmt.Errorf("label %s: %q is not KEY=value", LabelCNIArgs, kv)
		case !argKey.MatchString(k):
			return nil, fmt.Errorf("label %s: %q is not a valid CNI arg name", LabelCNIArgs, k)
		case reservedArgs[k]:
			return nil, fmt.Errorf("label %s: %s is set by docker-cni (use the %s, %s or %s labels)", LabelCNIArgs, k, LabelPodName, LabelPodNamespace, LabelPodUID)
		case seen[k]:
			return nil, fmt.Errorf("label %s: %s given twice", LabelCNIArgs, k)
		}
		if err := checkArgValue(k, v); err != nil {
			return nil, fmt.Errorf("label %s: %w", LabelCNIArgs, err)
		}
		seen[k] = true
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}
