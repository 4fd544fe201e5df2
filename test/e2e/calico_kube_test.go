package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Kubernetes API server of TestCalicoKubernetes: a real kube-apiserver
// built from the k8s.io/kubernetes module (test/calico/kube.sh), on an etcd
// of its own, loopback ports and a service range of the Calico tests.
const (
	kubeBinEnv                                = "E2E_KUBE_BIN"
	calicoSrcEnv                              = "E2E_CALICO_SRC"
	kubeEtcdClient, kubeEtcdPeer, kubeAPIPort = 24794, 24795, 24796
	kubeServiceRange                          = "10.247.0.0/24"
)

// kubeAPI is a running kube-apiserver: kubectl reaches it with kubeconfig,
// an admin's (system:masters).
type kubeAPI struct {
	bin, kubeconfig string
}

// kubeBins is the dir of kube-apiserver and kubectl, and the Calico source
// whose CRDs the API server gets; given with the Calico binaries, they must
// be there.
func kubeBins(t *testing.T) (kube, calicoSrc string) {
	t.Helper()
	kube, calicoSrc = os.Getenv(kubeBinEnv), os.Getenv(calicoSrcEnv)
	if kube == "" || calicoSrc == "" {
		t.Fatalf("%s and %s must name the kube-apiserver build and the Calico source (make calico-check sets them)", kubeBinEnv, calicoSrcEnv)
	}
	for _, b := range []string{"kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(kube, b)); err != nil {
			t.Fatalf("%s=%s: %v", kubeBinEnv, kube, err)
		}
	}
	return kube, calicoSrc
}

// openssl runs openssl in dir.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// kubePKI makes a CA, the API server's serving cert (127.0.0.1), an admin
// client cert (O=system:masters) and the service account key pair in dir.
func kubePKI(t *testing.T, dir string) {
	t.Helper()
	openssl(t, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2ecal-ca", "-keyout", "ca.key", "-out", "ca.crt")
	for _, c := range []struct{ name, subj, ext string }{
		{"apiserver", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"},
		{"admin", "/O=system:masters/CN=e2ecal-admin", "extendedKeyUsage=clientAuth"},
	} {
		if err := os.WriteFile(filepath.Join(dir, c.name+".ext"), []byte(c.ext+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		openssl(t, dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", c.subj, "-keyout", c.name+".key", "-out", c.name+".csr")
		openssl(t, dir, "x509", "-req", "-in", c.name+".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
			"-extfile", c.name+".ext", "-out", c.name+".crt")
	}
	openssl(t, dir, "genrsa", "-out", "sa.key", "2048")
	openssl(t, dir, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
}

// startKubeAPI runs etcd and kube-apiserver until the end of the test and
// waits until it is ready; then it creates what a controller-manager would
// (the default ServiceAccount), Calico's CRDs, and the Node.
func startKubeAPI(t *testing.T, kubeBin, calicoSrc, dir, node string) *kubeAPI {
	t.Helper()
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		t.Fatal(err)
	}
	kubePKI(t, pki)
	etcd := startEtcd(t, filepath.Join(dir, "api-etcd"), kubeEtcdClient, kubeEtcdPeer)
	portsFree(t, kubeAPIPort)
	p := func(f string) string { return filepath.Join(pki, f) }
	b := startBackground(t, "kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), nil, filepath.Join(kubeBin, "kube-apiserver"),
		"--etcd-servers="+etcd, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", kubeAPIPort),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"), "--client-ca-file="+p("ca.crt"),
		"--authorization-mode=Node,RBAC", "--service-cluster-ip-range="+kubeServiceRange, "--endpoint-reconciler-type=none",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p("sa.pub"),
		"--service-account-signing-key-file="+p("sa.key"), "--enable-priority-and-fairness=false")
	k := &kubeAPI{bin: kubeBin, kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2ecal
  cluster: {server: "https://127.0.0.1:%d", certificate-authority: %q}
users:
- name: admin
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: admin
  context: {cluster: e2ecal, user: admin}
current-context: admin
`, kubeAPIPort, p("ca.crt"), p("admin.crt"), p("admin.key"))
	if err := os.WriteFile(k.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	b.waitReady(t, func() error {
		_, err := k.kubectl("get", "--raw", "/readyz")
		return err
	})
	// Namespaces, ServiceAccounts of default: what the controller-manager
	// would make, some of it in the background.
	b.waitReady(t, func() error {
		_, err := k.kubectl("get", "namespace", "default")
		return err
	})
	k.must(t, "create", "serviceaccount", "default")
	k.must(t, "create", "-f", filepath.Join(calicoSrc, "manifests", "v1_crd_projectcalico_org.yaml"))
	b.waitReady(t, func() error {
		_, err := k.kubectl("wait", "--for=condition=Established", "--timeout=5s", "crd/ipamblocks.crd.projectcalico.org", "crd/ippools.crd.projectcalico.org")
		return err
	})
	k.apply(t, fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n", node))
	return k
}

// kubectl runs kubectl against the API server.
func (k *kubeAPI) kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(k.bin, "kubectl"), append([]string{"--kubeconfig", k.kubeconfig, "--cache-dir", filepath.Join(filepath.Dir(k.kubeconfig), "kube-cache")}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (k *kubeAPI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// apply applies a manifest given as text.
func (k *kubeAPI) apply(t *testing.T, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	k.must(t, "apply", "-f", f)
}

// The Kubernetes-datastore Calico node of TestCalicoKubernetes.
const (
	calKDDNet       = "e2ecal-kdd"
	calKDDPool      = "10.248.128.0/17"
	calKDDGateway   = "10.248.128.1"
	calKDDBroadcast = "10.248.255.255"
)

// TestCalicoKubernetes: on a node running Calico with the Kubernetes
// datastore (a real kube-apiserver with Calico's CRDs, the real calico and
// calico-ipam plugins), a Docker network bound to Calico's conflist:
// containers get their address from Calico IPAM without pod attributes
// (--ip too) through the chain docker-cni makes (calico-ipam, then ptp),
// reach a Calico pod on the node (started by a real kubelet on a
// containerd CRI runtime, networked by the calico plugin) and are reached
// by it and by the node; docker inspect shows the address and the gateway; published ports
// work; docker rm frees the allocation and its handle. The example's
// commands run first.
func TestCalicoKubernetes(t *testing.T) {
	bin := calicoBin(t)
	kubeBin, src := kubeBins(t)
	dir := t.TempDir()
	t.Setenv("PATH", bin+":"+kubeBin+":"+os.Getenv("PATH"))
	calicoHost(t)
	cleanFelix(t) // the calico plugin's state dirs
	k := startKubeAPI(t, kubeBin, src, dir, calNode)
	n := &calicoNode{bin: bin, dir: dir, datastore: []string{"DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + k.kubeconfig}}
	conf := editConflist(t, "kubernetes", calKDDNet, func(c map[string]any) {
		c["nodename"], c["nodename_file_optional"] = calNode, true
		c["log_file_path"] = filepath.Join(dir, "calico-cni.log")
		c["kubernetes"] = map[string]any{"kubeconfig": k.kubeconfig}
	})
	writeConflist(t, "10-"+calKDDNet+".conflist", conf)
	for _, e := range s.engines {
		t.Run("example-"+e.name, func(t *testing.T) {
			runCalicoExample(t, e, "kubernetes", append(n.datastore,
				"POOL="+calKDDPool, "POOL_NAME="+calKDDNet, "NETWORK_ADDRESS=10.248.128.0", "GATEWAY="+calKDDGateway,
				"BROADCAST="+calKDDBroadcast, "CNI_NETWORK="+calKDDNet))
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	// A real kubelet on the node's CRI runtime runs the Calico pod: the
	// calico plugin reads and patches its Pod.
	rt := calicoRuntime(t, dir, calKDDNet, conf)
	startKubelet(t, k, rt, dir, calNode)
	n.pod = kubeletPod(t, k, rt, calNode, "e2ecal-web")
	for i, e := range s.engines {
		t.Run(e.name, func(t *testing.T) {
			n.checkEngine(t, e, calKDDNet, calKDDPool, calKDDGateway, fmt.Sprintf("10.248.129.%d", 10+i), 24900+10*i)
			if out := k.must(t, "get", "ipamhandles.crd.projectcalico.org", "-o", "name"); strings.Contains(out, "docker-") {
				t.Errorf("IPAM handles of docker-cni left after docker rm:\n%s", out)
			}
		})
	}
	// The containers are no workload endpoints: felix would see only the
	// pod.
	if out, err := calicoctl(bin, n.datastore, "get", "workloadendpoints", "-A", "-o", "wide"); err != nil || !strings.Contains(out, "e2ecal-web") {
		t.Errorf("calicoctl get workloadendpoints: %v\n%s", err, out)
	}
}
