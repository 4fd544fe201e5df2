package cnirun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hostLocalConf(dataDir, requested string) []byte {
	args := ""
	if requested != "" {
		args = fmt.Sprintf(`, "args": {"cni": {"ips": [%q]}}`, requested)
	}
	return []byte(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "shared", "type": "docker-cni-ipam",
	  "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.88.0.0/24", "gateway": "10.88.0.1"}]]}%s}`, dataDir, args))
}

// TestHostLocalInProcess: reservations made in process land in host-local's
// own store format (one file per address holding owner and interface),
// honour a requested address, refuse a taken one, and are released by
// owner.
func TestHostLocalInProcess(t *testing.T) {
	dir := t.TempDir()
	h := HostLocal{}
	ctx := context.Background()
	a := PluginArgs{ContainerID: "docker-aaaa", IfName: "eth0"}
	res, err := h.PluginAdd(ctx, "host-local", hostLocalConf(dir, ""), a)
	if err != nil || len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.88.0.2/24" || res.IPs[0].Gateway.String() != "10.88.0.1" {
		t.Fatalf("ADD = %+v, %v; want 10.88.0.2/24 via 10.88.0.1", res, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "shared", "10.88.0.2"))
	if err != nil || strings.Fields(string(b))[0] != "docker-aaaa" || strings.Fields(string(b))[1] != "eth0" {
		t.Errorf("store file = %q, %v", b, err)
	}
	want := PluginArgs{ContainerID: "docker-bbbb", IfName: "eth0"}
	if res, err := h.PluginAdd(ctx, "host-local", hostLocalConf(dir, "10.88.0.9"), want); err != nil || res.IPs[0].Address.IP.String() != "10.88.0.9" {
		t.Errorf("ADD of a requested address = %+v, %v", res, err)
	}
	if _, err := h.PluginAdd(ctx, "host-local", hostLocalConf(dir, "10.88.0.9"), PluginArgs{ContainerID: "docker-cccc", IfName: "eth0"}); err == nil {
		t.Error("a taken address was handed out again")
	}
	if err := h.PluginDel(ctx, "host-local", hostLocalConf(dir, ""), a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shared", "10.88.0.2")); !os.IsNotExist(err) {
		t.Errorf("after DEL the address is still held: %v", err)
	}
	if err := h.PluginDel(ctx, "host-local", hostLocalConf(dir, ""), a); err != nil {
		t.Errorf("a second DEL: %v", err)
	}
}
