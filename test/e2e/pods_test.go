package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/cri"
)

const (
	podNet    = "e2e-k8s-pods"
	podBridge = "e2ek8s0"
)

var podSubnet = netip.MustParsePrefix("10.231.250.0/24")

// kubeletConflist is the pod network of a kubeadm-style node without a
// CNI add-on: bridge + host-local + portmap, and no firewall plugin.
func kubeletConflist(dataDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, podNet, podBridge, podSubnet, dataDir)
}

// podEnv is a containerd CRI runtime and docker-cni sharing one conflist.
type podEnv struct {
	rt      *cri.Runtime
	dataDir string
	nets    map[string]string // engine name -> Docker network bound to podNet
}

func startPodEnv(t *testing.T) *podEnv {
	t.Helper()
	ctx := t.Context()
	snap, err := cri.SnapshotHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clean := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := snap.Cleanup(cctx, podBridge, podSubnet); err != nil {
			t.Errorf("clean up host: %v", err)
		}
	}
	clean()
	t.Cleanup(clean)
	dir := t.TempDir()
	env := &podEnv{dataDir: filepath.Join(dir, "cni-networks"), nets: map[string]string{}}
	conf := kubeletConflist(env.dataDir)
	// containerd reads its own conf dir (it takes the first file); docker-cni
	// reads its own: the same conflist in both, as on a node.
	criConf := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(criConf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(criConf, "10-"+podNet+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConflist(t, "10-"+podNet+".conflist", conf)
	if env.rt, err = cri.Start(ctx, filepath.Join(dir, "containerd"), criConf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.rt.Stop() })
	for _, e := range s.engines {
		name := uniq(t, e, "pods")
		// The pods' bridge may already be up: then Docker needs --subnet.
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+podNet, "--subnet", podSubnet.String())
		env.nets[e.name] = name
	}
	return env
}

// storeOwners maps each address in host-local's store to its owner.
func (env *podEnv) storeOwners(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(env.dataDir, podNet))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range entries {
		if _, err := netip.ParseAddr(en.Name()); err != nil {
			continue
		}
		owner, _ := storeOwner(env.dataDir, podNet, en.Name())
		out[en.Name()] = owner
	}
	return out
}

// TestPodsAndContainers: a CRI pod (containerd, as kubelet runs it) and
// `docker run` containers of both engines on one kubelet conflist reach
// each other both ways, new connections included, with no firewall plugin
// in the conflist on a node where dockerd set FORWARD to DROP.
func TestPodsAndContainers(t *testing.T) {
	env := startPodEnv(t)
	ctx := t.Context()
	pod, err := env.rt.RunPod(ctx, "e2e-web", "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.rt.RemovePod(context.Background(), pod.ID) })
	if _, err := env.rt.RunContainer(ctx, pod, []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range s.engines {
		t.Run(e.name, func(t *testing.T) {
			c := env.nets[e.name] + "-c"
			e.container(t, c, "--network", env.nets[e.name])
			cip := e.inspectIP(t, c, env.nets[e.name])
			if owner, ok := env.storeOwners(t)[cip]; !ok || !strings.HasPrefix(owner, "docker-") {
				t.Errorf("container address %s in the pods' host-local store: owner %q, present %v", cip, owner, ok)
			}
			// container -> pod: ICMP and a new TCP connection.
			if err := e.ping(c, pod.IP); err != nil {
				t.Error(err)
			}
			var out string
			for i := 0; i < 20; i++ {
				out, err = e.docker("exec", c, "sh", "-c", fmt.Sprintf(`printf 'GET /hostname HTTP/1.0\r\n\r\n' | nc -w 3 %s 8080`, pod.IP))
				if strings.Contains(out, "200 OK") {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if !strings.Contains(out, "200 OK") {
				t.Errorf("TCP from container %s to pod %s:8080: %v %q", c, pod.IP, err, out)
			}
			// pod -> container: a container in the pod pings the Docker
			// container and only then serves; the host checks it serves.
			port := 8100 + e.net
			if _, err := env.rt.RunContainer(ctx, pod, []string{"/bin/busybox", "sh", "-c",
				fmt.Sprintf("/bin/busybox ping -c 1 -W 3 %s && exec /bin/busybox httpd -f -p %d -h /etc", cip, port)}); err != nil {
				t.Fatal(err)
			}
			if body, err := httpGet(fmt.Sprintf("http://%s:%d/hostname", pod.IP, port)); err != nil || body == "" {
				t.Errorf("pod %s did not reach container %s (its ping-gated server on %d never answered): %v", pod.IP, cip, port, err)
			}
		})
	}
}

// TestPodsAndContainersConcurrently: 20 pods and 20 containers (split over
// the engines) created at once on one network get 40 distinct addresses,
// each in the host-local store under its owner; removing a pod disturbs no
// container and the reverse; removing everything empties the store.
func TestPodsAndContainersConcurrently(t *testing.T) {
	env := startPodEnv(t)
	ctx := t.Context()
	const n = 20
	var mu sync.Mutex
	var errs []error
	pods := map[string]*cri.Pod{}    // name -> pod
	ctrs := map[string]string{}      // container -> address
	ctrEngine := map[string]engine{} // container -> engine
	fail := func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			p, err := env.rt.RunPod(ctx, fmt.Sprintf("e2e-many-%d", i), "default", nil)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			pods[p.Name] = p
			mu.Unlock()
		})
		e := s.engines[i%len(s.engines)]
		wg.Go(func() {
			name := fmt.Sprintf("%s-many-%d", env.nets[e.name], i)
			if out, err := e.docker("run", "-d", "--name", name, "--network", env.nets[e.name], image, "sleep", "3600"); err != nil {
				fail(fmt.Errorf("docker run %s: %v: %s", name, err, out))
				return
			}
			mu.Lock()
			ctrs[name], ctrEngine[name] = "", e
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for name, e := range ctrEngine {
			e.docker("rm", "-f", name)
		}
		for _, p := range pods {
			env.rt.RemovePod(context.Background(), p.ID)
		}
	})
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	owners := env.storeOwners(t)
	seen := map[string]string{}
	claim := func(addr, who string) {
		if other, dup := seen[addr]; dup {
			t.Errorf("address %s given to both %s and %s", addr, other, who)
		}
		seen[addr] = who
		if _, ok := owners[addr]; !ok {
			t.Errorf("%s's address %s is not in the host-local store", who, addr)
		}
	}
	for _, p := range pods {
		claim(p.IP, "pod "+p.Name)
		if owners[p.IP] != p.ID {
			t.Errorf("store owner of pod %s's %s: %q, want its sandbox ID", p.Name, p.IP, owners[p.IP])
		}
	}
	for name, e := range ctrEngine {
		ip := e.inspectIP(t, name, env.nets[e.name])
		ctrs[name] = ip
		claim(ip, "container "+name)
		checkInsideIP(t, e, name, ip)
		checkReserved(t, env.dataDir, podNet, ip)
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct addresses, want %d", len(seen), 2*n)
	}

	// Remove one pod: containers still reach another pod; remove one
	// container: pods still reachable from the others.
	var victim, other *cri.Pod
	for _, p := range pods {
		if victim == nil {
			victim = p
		} else if other == nil {
			other = p
		}
	}
	if err := env.rt.RemovePod(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	delete(pods, victim.Name)
	var firstCtr, secondCtr string
	for name := range ctrs {
		if firstCtr == "" {
			firstCtr = name
		} else if secondCtr == "" {
			secondCtr = name
		}
	}
	if err := ctrEngine[firstCtr].ping(firstCtr, other.IP); err != nil {
		t.Errorf("after removing a pod: %v", err)
	}
	ctrEngine[firstCtr].must(t, "rm", "-f", firstCtr)
	if err := ctrEngine[secondCtr].ping(secondCtr, other.IP); err != nil {
		t.Errorf("after removing a container: %v", err)
	}
	delete(ctrs, firstCtr)
	delete(ctrEngine, firstCtr)

	// Remove everything, concurrently: the store is empty.
	for name, e := range ctrEngine {
		wg.Go(func() { e.docker("rm", "-f", name) })
	}
	for _, p := range pods {
		wg.Go(func() {
			if err := env.rt.RemovePod(ctx, p.ID); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if left := env.storeOwners(t); len(left) != 0 {
		t.Errorf("after removing every pod and container, the store still holds %v", left)
	}
}

// TestRestartsKeepBookkeeping: docker-cni killed and restarted, and
// containerd killed and restarted, in the middle of a shared network's
// life: no address is handed out twice afterwards, and removing everything
// made before and after empties the store.
func TestRestartsKeepBookkeeping(t *testing.T) {
	env := startPodEnv(t)
	ctx := t.Context()
	owners := map[string]string{} // address -> pod or container
	claim := func(addr, who string) {
		if other, dup := owners[addr]; dup {
			t.Errorf("address %s given to %s while %s holds it", addr, who, other)
		}
		owners[addr] = who
	}
	var pods []*cri.Pod
	var ctrs []struct {
		e    engine
		name string
	}
	t.Cleanup(func() {
		for _, c := range ctrs {
			c.e.docker("rm", "-f", c.name)
		}
		for _, p := range pods {
			env.rt.RemovePod(context.Background(), p.ID)
		}
	})
	round := func(tag string) {
		for i := 0; i < 3; i++ {
			p, err := env.rt.RunPod(ctx, fmt.Sprintf("e2e-%s-%d", tag, i), "default", nil)
			if err != nil {
				t.Fatal(err)
			}
			pods = append(pods, p)
			claim(p.IP, "pod "+p.Name)
		}
		for _, e := range s.engines {
			for i := 0; i < 2; i++ {
				name := fmt.Sprintf("%s-%s-%d", env.nets[e.name], tag, i)
				e.must(t, "run", "-d", "--name", name, "--network", env.nets[e.name], image, "sleep", "3600")
				ctrs = append(ctrs, struct {
					e    engine
					name string
				}{e, name})
				ip := e.inspectIP(t, name, env.nets[e.name])
				claim(ip, "container "+name)
				checkReserved(t, env.dataDir, podNet, ip)
			}
		}
	}
	round("before")
	s.d.kill9()
	if err := s.d.start(); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	round("after")
	if err := ctrs[0].e.ping(ctrs[0].name, pods[len(pods)-1].IP); err != nil {
		t.Errorf("after the restarts, an old container cannot reach a new pod: %v", err)
	}
	for _, c := range ctrs {
		c.e.must(t, "rm", "-f", c.name)
	}
	for _, p := range pods {
		if err := env.rt.RemovePod(ctx, p.ID); err != nil {
			t.Error(err)
		}
	}
	ctrs, pods = nil, nil
	if left := env.storeOwners(t); len(left) != 0 {
		t.Errorf("after removing everything made before and after the restarts, the store still holds %v", left)
	}
}
