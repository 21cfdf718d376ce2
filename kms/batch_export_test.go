package kms

import "context"

// MaxBatchRings is the most key rings one Batch holds at once.
const MaxBatchRings = maxBatchRings

// BatchPeak is s.Batch, and also returns the most key rings (or errors
// reading them) the batch held at once. It is compiled into the tests only.
func BatchPeak(s *Service, ctx context.Context, c Caller, enclave string, items []BatchItem) ([]BatchResult, int, error) {
	return s.runBatch(ctx, c, enclave, items)
}
