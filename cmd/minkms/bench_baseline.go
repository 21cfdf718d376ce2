package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/minkms/minkms/tlsmgr/pki"
)

// benchBaselineJSON is what bench baseline prints once it listens.
type benchBaselineJSON struct {
	Server string `json:"server"`
	CAFile string `json:"ca_file"`
	PID    int    `json:"pid"`
}

// benchBaselineCommand is the hidden baseline server of make bench: HTTPS
// with the same mutual TLS as a node (TLS 1.3, h2, a client certificate
// required), which decodes the same JSON request bodies and answers each
// operation with a fixed response. It measures the ceiling of the TLS, HTTP
// and JSON stack that every request of a node pays.
func (c *cli) benchBaselineCommand() *cobra.Command {
	var address, dir string
	cmd := &cobra.Command{
		Use:    "baseline",
		Short:  "Serve fixed answers over mutual TLS, the baseline of make bench",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1:0", "address to listen on")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the CA certificate (default: a new temporary directory)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return c.serveBaseline(cmd.Context(), address, dir)
	}
	return cmd
}

func (c *cli) serveBaseline(ctx context.Context, address, dir string) error {
	ca, err := pki.NewCA(pki.CAOptions{Name: "minkms bench baseline CA", Validity: 24 * time.Hour, KeyType: pki.ECDSAP256})
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(pki.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Hosts: []string{"localhost"},
		Validity: 23 * time.Hour, KeyType: pki.ECDSAP256})
	if err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "minkms-baseline-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	caFile := filepath.Join(dir, "baseline-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		return fmt.Errorf("write the CA certificate: %w", err)
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: baselineHandler(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}},
			ClientAuth:   tls.RequireAnyClientCert,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := writeJSON(c.stdout, benchBaselineJSON{Server: "https://" + ln.Addr().String(), CAFile: caFile, PID: os.Getpid()}); err != nil {
		return err
	}
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// baselineRequest has the fields of the request bodies of the key
// operations.
type baselineRequest struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context"`
	Message    []byte `json:"message"`
	Length     int    `json:"length"`
}

func baselineHandler() http.Handler {
	fixed := func(v any) []byte {
		b, _ := json.Marshal(v)
		return b
	}
	data32 := make([]byte, 32)
	ct := make([]byte, 80)
	answers := map[string][]byte{
		"generate": fixed(map[string][]byte{"plaintext": data32, "ciphertext": ct}),
		"encrypt":  fixed(map[string][]byte{"ciphertext": ct}),
		"decrypt":  fixed(map[string][]byte{"plaintext": data32}),
		"hmac":     fixed(map[string][]byte{"hmac": data32}),
	}
	other := fixed(map[string]any{"name": "bench", "algorithm": "AES256", "versions": []map[string]any{{"version": 1, "created_at": time.Now().UTC()}}})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, `{"message":"read the request"}`, http.StatusBadRequest)
			return
		}
		if len(body) > 0 {
			var req baselineRequest
			if err := json.Unmarshal(body, &req); err != nil {
				http.Error(w, `{"message":"invalid JSON"}`, http.StatusBadRequest)
				return
			}
		}
		answer, ok := answers[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]]
		if !ok {
			answer = other
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
}
