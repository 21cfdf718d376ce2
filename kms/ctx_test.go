package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/storage/kv"
)

// ctxState is a state that honours the caller's context, as the real
// adapters do.
type ctxState struct{ *kmstest.State }

func (s ctxState) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kv.Entry{}, err
	}
	return s.State.Get(ctx, bucket, name)
}

// TestEndedContextIsNotNoLeader: a request whose own deadline passed or
// whose client went away must not be reported as a cluster without a
// leader, which would send operators after a raft problem that is not there.
func TestEndedContextIsNotNoLeader(t *testing.T) {
	st := kmstest.New(t)
	admin := MustIdentity(t, "root")
	svc := kms.New(ctxState{st}, st, kms.Options{Admins: []kms.Identity{admin}, Now: func() time.Time { return testNow }})
	if err := svc.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := MustCaller(t, svc, admin)

	expired, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"DeadlineExceeded", expired, "request timed out"},
		{"Canceled", cancelled, "request cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.DescribeKey(tc.ctx, c, kms.DefaultEnclave, "k")
			if errors.Is(err, kms.ErrNoLeader) || kms.ErrorCode(err) != kms.Unavailable || kms.Message(err) != tc.want {
				t.Fatalf("DescribeKey = %v (code %v, message %q), want Unavailable %q", err, kms.ErrorCode(err), kms.Message(err), tc.want)
			}
		})
	}
}
