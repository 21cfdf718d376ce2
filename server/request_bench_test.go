package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkGenerateKey measures a whole KES-compatible data key request
// through a node: keep-alive mutual TLS, routing, authentication, the audit
// trail, kms and the JSON answer, with concurrent clients (the client side
// runs in the same process). For CPU profiles of the request path:
//
//	go test -run '^$' -bench GenerateKey -cpuprofile cpu.out ./server/ && go tool pprof -top cpu.out
func BenchmarkGenerateKey(b *testing.B) {
	n := MustStartNode(b)
	n.MustOK(b, n.admin, http.MethodPut, "/v1/key/create/bench-generate", nil, nil)
	body := []byte(`{"context":"YnVja2V0L29iamVjdA=="}`)
	// Keep a connection per client, as real clients do, rather than a
	// handshake per request beyond http.Transport's default of 2.
	tr := n.admin.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPut, n.url+"/v1/key/generate/bench-generate", bytes.NewReader(body))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
