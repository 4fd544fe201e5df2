package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/cri"
)

// The kubelet of TestCalicoKubernetes: loopback ports of the Calico tests.
const kubeletPort, kubeletHealthz = 24797, 24798

// kubeletSysctls are the sysctls kubelet sets on start; the test puts them
// back.
var kubeletSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// startKubelet runs a real kubelet (test/calico/kube.sh builds it) for node
// on the CRI runtime rt, registered with the API server k, until the end
// of the test, and waits until the node is Ready; then it drops the
// not-ready taint a controller-manager would. It restores what kubelet
// changes on the host.
func startKubelet(t *testing.T, k *kubeAPI, rt *cri.Runtime, dir, node string) {
	t.Helper()
	portsFree(t, kubeletPort, kubeletHealthz)
	kubeletHostState(t)
	pki := filepath.Join(dir, "pki")
	if err := os.WriteFile(filepath.Join(pki, "kubelet.ext"), []byte("extendedKeyUsage=clientAuth\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, pki, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=system:nodes/CN=system:node:"+node, "-keyout", "kubelet.key", "-out", "kubelet.csr")
	openssl(t, pki, "x509", "-req", "-in", "kubelet.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "kubelet.ext", "-out", "kubelet.crt")
	root := filepath.Join(dir, "kubelet")
	if err := os.MkdirAll(filepath.Join(root, "pod-logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	kc := strings.NewReplacer("admin.crt", "kubelet.crt", "admin.key", "kubelet.key", "name: admin", "name: kubelet", "user: admin", "user: kubelet", "current-context: admin", "current-context: kubelet").
		Replace(mustRead(t, k.kubeconfig))
	kubeconfig := filepath.Join(root, "kubeconfig")
	config := filepath.Join(root, "config.yaml")
	writeFile(t, kubeconfig, kc)
	writeFile(t, config, kubeletConfig(rt.Socket, filepath.Join(root, "pod-logs"), filepath.Join(pki, "ca.crt")))
	t.Cleanup(func() {
		// kubelet bind mounts its root dir onto itself, rshared.
		if err := unmountUnder(root); err != nil {
			t.Errorf("unmount under kubelet's root dir: %v", err)
		}
		syscall.Unmount(root, syscall.MNT_DETACH)
	})
	b := startBackground(t, "kubelet", filepath.Join(dir, "kubelet.log"), nil, filepath.Join(k.bin, "kubelet"),
		"--config="+config, "--kubeconfig="+kubeconfig, "--root-dir="+root, "--cert-dir="+filepath.Join(root, "pki"), "--hostname-override="+node)
	b.waitReady(t, func() error {
		out, err := k.kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err == nil && out != "True" {
			err = fmt.Errorf("node %s Ready=%q", node, out)
		}
		return err
	})
	if out, err := k.kubectl("taint", "nodes", node, "node.kubernetes.io/not-ready:NoSchedule-"); err != nil && !strings.Contains(out, "not found") {
		t.Fatalf("drop the not-ready taint: %v\n%s", err, out)
	}
}

// kubeletConfig is the KubeletConfiguration of the test's kubelet (the
// recipe of shared/notes/real-kubernetes-node.md): the CRI runtime at
// socket, cgroup v1 without QoS cgroups, loopback ports, no iptables
// chains, no image GC or eviction in the way.
func kubeletConfig(socket, podLogs, clientCA string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
podLogsDir: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
`, socket, kubeletPort, kubeletHealthz, podLogs, clientCA)
}

// kubeletHostState saves what kubelet changes on the host (sysctls, the
// dirs it makes outside its root dir) and restores it at the end.
func kubeletHostState(t *testing.T) {
	t.Helper()
	saved := map[string]string{}
	for _, s := range kubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			t.Fatal(err)
		}
		saved[s] = strings.TrimSpace(string(b))
	}
	var made []string
	for _, d := range []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			made = append(made, d)
		}
	}
	t.Cleanup(func() {
		for s, v := range saved {
			if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
				t.Errorf("restore %s=%s: %v", s, v, err)
			}
		}
		for _, d := range made {
			os.RemoveAll(d)
		}
	})
}

// kubeletPod makes a pod in the API server, for node, serving HTTP on 8080
// (its hostname is the pod's name); the kubelet runs it through the CRI
// runtime rt, whose CNI is the node's conflist. It returns the running pod
// and deletes it at the end (kubelet runs its CNI DEL).
func kubeletPod(t *testing.T, k *kubeAPI, rt *cri.Runtime, node, name string) *cri.Pod {
	t.Helper()
	k.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default, labels: {app: e2ecal}}
spec:
  nodeName: %s
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]
`, name, node, rt.Image))
	t.Cleanup(func() { k.kubectl("delete", "pod", name, "--wait=true", "--timeout=60s") })
	var pod *cri.Pod
	deadline := time.Now().Add(2 * time.Minute)
	for {
		phase, _ := k.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}")
		var err error
		if phase == "Running" {
			if pod, err = rt.FindPod(t.Context(), name, "default"); err == nil {
				return pod
			}
		}
		if time.Now().After(deadline) {
			desc, _ := k.kubectl("describe", "pod", name)
			t.Fatalf("pod %s not running after 2 minutes (phase %q, %v):\n%s", name, phase, err, desc)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
