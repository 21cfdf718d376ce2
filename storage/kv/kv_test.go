package kv_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/minkms/minkms/storage/kv"
)

func TestConditionHolds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        kv.Condition
		exists   bool
		revision uint64
		want     bool
	}{
		{"MustNotExist/Missing", kv.Condition{Kind: kv.MustNotExist}, false, 0, true},
		{"MustNotExist/Present", kv.Condition{Kind: kv.MustNotExist}, true, 3, false},
		{"MustExist/Present", kv.Condition{Kind: kv.MustExist}, true, 3, true},
		{"MustExist/Missing", kv.Condition{Kind: kv.MustExist}, false, 0, false},
		{"AtRevision/Same", kv.Condition{Kind: kv.AtRevision, Revision: 3}, true, 3, true},
		{"AtRevision/Other", kv.Condition{Kind: kv.AtRevision, Revision: 3}, true, 4, false},
		{"AtRevision/Missing", kv.Condition{Kind: kv.AtRevision, Revision: 0}, false, 0, false},
		{"UnknownKind", kv.Condition{Kind: 9}, true, 3, false},
		{"ZeroKind", kv.Condition{}, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Holds(tc.exists, tc.revision); got != tc.want {
				t.Errorf("Holds(%v, %d) = %v, want %v", tc.exists, tc.revision, got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := []kv.Change{
		{},
		{
			Require: []kv.Condition{
				{Kind: kv.MustNotExist, Bucket: "enclaves/default/keys", Name: "k", Code: "key-exists"},
				{Kind: kv.AtRevision, Bucket: "enclaves", Name: "default", Revision: 7},
				{Kind: kv.MustExist, Bucket: "b", Name: "n", Code: strings.Repeat("a", kv.MaxCodeLen)},
			},
			Apply: []kv.Mutation{
				{Kind: kv.Put, Bucket: "enclaves/default/keys", Name: "k", Value: []byte("v")},
				{Kind: kv.Delete, Bucket: "b", Name: "n"},
				{Kind: kv.DeleteBucket, Bucket: "enclaves/old"},
			},
		},
	}
	for i, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("valid change %d: Validate = %v", i, err)
		}
	}
	for _, tc := range []struct {
		name string
		c    kv.Change
	}{
		{"UnknownCondition", kv.Change{Require: []kv.Condition{{Kind: 9, Bucket: "b", Name: "n"}}}},
		{"CodeUpperCase", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b", Name: "n", Code: "Key-exists"}}}},
		{"CodeSpace", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b", Name: "n", Code: "key exists"}}}},
		{"CodeTooLong", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b", Name: "n", Code: strings.Repeat("a", kv.MaxCodeLen+1)}}}},
		{"ConditionNoName", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b"}}}},
		{"UnknownMutation", kv.Change{Apply: []kv.Mutation{{Kind: 9, Bucket: "b", Name: "n"}}}},
		{"PutNoValue", kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: "n"}}}},
		{"DeleteBucketWithName", kv.Change{Apply: []kv.Mutation{{Kind: kv.DeleteBucket, Bucket: "b", Name: "n"}}}},
		{"EmptySegment", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "a//b", Name: "n"}}}},
		{"NULBucket", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "a\x00", Name: "n"}}}},
		{"LongName", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "b", Name: strings.Repeat("n", kv.MaxPathLen+1)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.Validate(); !errors.Is(err, kv.ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestConditionErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *kv.ConditionError
		want string
	}{
		{&kv.ConditionError{Index: 1, Code: "key-exists"}, "precondition 1 failed (key-exists)"},
		{&kv.ConditionError{Index: 0}, "precondition 0 failed"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
