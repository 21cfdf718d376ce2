package api_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/minkms/minkms/api"
)

// callKind is how the Client may treat a method's request.
type callKind int

const (
	// stateRead is a describe or list of the replicated state: sent again
	// to the next endpoint freely, and consistent when asked.
	stateRead callKind = iota
	// otherRead changes nothing either (a cryptographic operation, the
	// node's status): sent again freely, never consistent.
	otherRead
	// write changes the state: sent again only if it certainly was not
	// applied.
	write
)

func (k callKind) String() string {
	return [...]string{"stateRead", "otherRead", "write"}[k]
}

// sdkCall is one method of the SDK that sends a request.
type sdkCall struct {
	name string // "Client.X" or "Enclave.X", the method it calls
	kind callKind
	call func(context.Context, *api.Client) error
}

// sdkCalls holds every method of Client and Enclave that sends a request;
// TestSDKCallsComplete keeps it complete.
var sdkCalls = []sdkCall{
	{"Client.Version", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.Version(ctx); return err }},
	{"Client.Status", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.Status(ctx); return err }},
	{"Client.Ready", otherRead, func(ctx context.Context, c *api.Client) error { return c.Ready(ctx) }},
	{"Client.Live", otherRead, func(ctx context.Context, c *api.Client) error { return c.Live(ctx) }},
	{"Client.TLSStatus", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.TLSStatus(ctx); return err }},
	// A reload is of the node that answers, not of the replicated state,
	// and doing it twice is doing it once.
	{"Client.ReloadTLS", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.ReloadTLS(ctx); return err }},
	// Setting a level twice is setting it once.
	{"Client.SetLogLevel", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.SetLogLevel(ctx, "debug", "all")
		return err
	}},
	{"Client.DescribeSelf", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.DescribeSelf(ctx); return err }},

	{"Client.CreateKey", write, func(ctx context.Context, c *api.Client) error { return c.CreateKey(ctx, "k") }},
	{"Client.ImportKey", write, func(ctx context.Context, c *api.Client) error {
		return c.ImportKey(ctx, "k", &api.ImportKeyRequest{Key: make([]byte, 32), Cipher: "AES256"})
	}},
	{"Client.DescribeKey", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.DescribeKey(ctx, "k"); return err }},
	{"Client.ListKeys", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.ListKeys(ctx, "a", "b", 2); return err }},
	{"Client.DeleteKey", write, func(ctx context.Context, c *api.Client) error { return c.DeleteKey(ctx, "k") }},
	{"Client.GenerateKey", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.GenerateKey(ctx, "k", nil); return err }},
	{"Client.Encrypt", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Encrypt(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Client.Decrypt", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Decrypt(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Client.HMAC", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.HMAC(ctx, "k", []byte("x")); return err }},
	{"Client.Rewrap", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Rewrap(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Client.Batch", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Batch(ctx, []api.BatchItem{{Op: api.BatchHMAC, Name: "k"}})
		return err
	}},
	{"Enclave.Rewrap", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").Rewrap(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Enclave.Batch", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").Batch(ctx, []api.BatchItem{{Op: api.BatchHMAC, Name: "k"}})
		return err
	}},

	{"Client.CreateEnclave", write, func(ctx context.Context, c *api.Client) error { _, err := c.CreateEnclave(ctx, "e"); return err }},
	{"Client.DescribeEnclave", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.DescribeEnclave(ctx, "e"); return err }},
	{"Client.ListEnclaves", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.ListEnclaves(ctx, "", "", 0); return err }},
	{"Client.DeleteEnclave", write, func(ctx context.Context, c *api.Client) error { return c.DeleteEnclave(ctx, "e") }},

	{"Client.ClusterMembers", stateRead, func(ctx context.Context, c *api.Client) error { _, err := c.ClusterMembers(ctx); return err }},
	{"Client.AddNode", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.AddNode(ctx, "n4.example:7374")
		return err
	}},
	{"Client.RemoveNode", write, func(ctx context.Context, c *api.Client) error { return c.RemoveNode(ctx, "n3") }},
	{"Client.ClusterStatus", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.ClusterStatus(ctx); return err }},
	{"Client.NodeTLSStatus", otherRead, func(ctx context.Context, c *api.Client) error { _, err := c.NodeTLSStatus(ctx, "n2"); return err }},

	{"Enclave.CreateKey", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").CreateKey(ctx, "k", nil)
		return err
	}},
	{"Enclave.ImportKey", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").ImportKey(ctx, "k", &api.ImportKeyRequest{Key: make([]byte, 32), Cipher: "AES256"})
		return err
	}},
	{"Enclave.DescribeKey", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").DescribeKey(ctx, "k")
		return err
	}},
	{"Enclave.ListKeys", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").ListKeys(ctx, "a", "", 0)
		return err
	}},
	{"Enclave.DeleteKey", write, func(ctx context.Context, c *api.Client) error { return c.Enclave("e").DeleteKey(ctx, "k") }},
	{"Enclave.RotateKey", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").RotateKey(ctx, "k")
		return err
	}},
	{"Enclave.DeleteKeyVersion", write, func(ctx context.Context, c *api.Client) error { return c.Enclave("e").DeleteKeyVersion(ctx, "k", 1) }},
	{"Enclave.GenerateKey", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").GenerateKey(ctx, "k", nil, 0)
		return err
	}},
	{"Enclave.Encrypt", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").Encrypt(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Enclave.Decrypt", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").Decrypt(ctx, "k", []byte("x"), nil)
		return err
	}},
	{"Enclave.HMAC", otherRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").HMAC(ctx, "k", []byte("x"))
		return err
	}},

	{"Enclave.CreateIdentity", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").CreateIdentity(ctx, adminID, &api.CreateIdentityRequest{Policy: "p"})
		return err
	}},
	{"Enclave.DescribeIdentity", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").DescribeIdentity(ctx, adminID)
		return err
	}},
	{"Enclave.ListIdentities", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").ListIdentities(ctx, "", "", 0)
		return err
	}},
	{"Enclave.DeleteIdentity", write, func(ctx context.Context, c *api.Client) error { return c.Enclave("e").DeleteIdentity(ctx, adminID) }},

	{"Enclave.CreatePolicy", write, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").CreatePolicy(ctx, "p", &api.Policy{}, true)
		return err
	}},
	{"Enclave.DescribePolicy", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").DescribePolicy(ctx, "p")
		return err
	}},
	{"Enclave.ListPolicies", stateRead, func(ctx context.Context, c *api.Client) error {
		_, err := c.Enclave("e").ListPolicies(ctx, "", "", 0)
		return err
	}},
	{"Enclave.DeletePolicy", write, func(ctx context.Context, c *api.Client) error { return c.Enclave("e").DeletePolicy(ctx, "p") }},
}

// TestSDKCallsComplete fails when a method of Client or Enclave sends
// requests but sdkCalls does not say of what kind.
func TestSDKCallsComplete(t *testing.T) {
	sendsNothing := map[string]bool{
		"Client.Endpoints":            true,
		"Client.CloseIdleConnections": true,
		"Client.Enclave":              true,
		"Enclave.Name":                true,
		// These stream a whole backup, with their own failover (Backup:
		// on a transport error only; Restore: to the leader only), and
		// are tested end to end in integration/backup_test.go.
		"Client.Backup":  true,
		"Client.Restore": true,
		// Log streams, with their own failover (openStream), tested in
		// server/logs_test.go and integration/logs_test.go.
		"Client.Logs":      true,
		"Client.AuditLogs": true,
	}
	listed := map[string]bool{}
	for _, c := range sdkCalls {
		if listed[c.name] {
			t.Errorf("%s is listed twice", c.name)
		}
		listed[c.name] = true
	}
	for _, v := range []any{(*api.Client)(nil), (*api.Enclave)(nil)} {
		typ := reflect.TypeOf(v)
		for m := range typ.Methods() {
			name := typ.Elem().Name() + "." + m.Name
			if !listed[name] && !sendsNothing[name] {
				t.Errorf("%s is not in sdkCalls: add it with its kind", name)
			}
			delete(listed, name)
		}
	}
	for name := range listed {
		t.Errorf("sdkCalls lists %s, which is not a method", name)
	}
}
