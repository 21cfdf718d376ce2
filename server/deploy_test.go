package server_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/minkms/minkms/server"
)

// TestDeployConfigs parses the example configs of deploy/ as a node would
// and checks that they describe one three-node cluster: the same admins,
// root key source, CA and join list everywhere, each node its own id and
// addresses. The cluster formation settings are read by name, so the test
// compiles against any ClusterConfig and fails where one is missing.
func TestDeployConfigs(t *testing.T) {
	var joins [][]string
	var admins []string
	for i, id := range []string{"n1", "n2", "n3"} {
		file := filepath.Join("..", "deploy", id+".yaml")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := server.ParseConfig(file, data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		host := "kms-" + string(rune('1'+i)) + ".example.net"
		c := reflect.ValueOf(cfg.Cluster)
		field := func(name string) any {
			f := c.FieldByName(name)
			if !f.IsValid() {
				t.Fatalf("server.ClusterConfig has no field %s", name)
			}
			return f.Interface()
		}
		for name, want := range map[string]any{
			"NodeID":          id,
			"Advertise":       host + ":7373",
			"Address":         "0.0.0.0:7374",
			"AdvertisePeer":   host + ":7374",
			"BootstrapExpect": 3,
		} {
			if got := field(name); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: cluster %s = %v, want %v", file, name, got, want)
			}
		}
		joins = append(joins, field("Join").([]string))
		if cfg.DataDir != "/var/lib/minkms" || cfg.RootKey.File != "/etc/minkms/root.key" || cfg.TLS.CA != "/etc/minkms/tls/ca.crt" {
			t.Errorf("%s: data_dir %s, root key %s, CA %s", file, cfg.DataDir, cfg.RootKey.File, cfg.TLS.CA)
		}
		if len(cfg.TLS.Certs) != 1 || cfg.TLS.Certs[0].Cert != "/etc/minkms/tls/node.crt" {
			t.Errorf("%s: certs %v", file, cfg.TLS.Certs)
		}
		var ids []string
		for _, a := range cfg.Admins {
			ids = append(ids, a.String())
		}
		if admins == nil {
			admins = ids
		} else if !slices.Equal(admins, ids) {
			t.Errorf("%s: admins %v differ from n1's %v", file, ids, admins)
		}
	}
	want := []string{"kms-1.example.net:7374", "kms-2.example.net:7374", "kms-3.example.net:7374"}
	for i, j := range joins {
		if !slices.Equal(j, want) {
			t.Errorf("n%d: join %v, want %v", i+1, j, want)
		}
	}
}
