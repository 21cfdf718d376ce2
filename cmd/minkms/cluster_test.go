package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

const membersAnswer = `{"members":[` +
	`{"id":"n1","peer_address":"n1.example:7374","api_address":"n1.example:7373","suffrage":"voter","leader":false},` +
	`{"id":"n2","peer_address":"n2.example:7374","api_address":"n2.example:7373","suffrage":"voter","leader":true},` +
	`{"id":"n4","peer_address":"n4.example:7374","api_address":"","suffrage":"nonvoter","leader":false}]}`

func TestClusterMembers(t *testing.T) {
	answers := map[string]answer{"GET /v1/cluster/members": {200, membersAnswer}}
	t.Run("Table", func(t *testing.T) {
		MustFakeServer(t, answers)
		stdout, stderr, code := runCLI(t, "", "cluster", "members")
		want := "ID  PEER ADDRESS     API ADDRESS      SUFFRAGE  ROLE\n" +
			"n1  n1.example:7374  n1.example:7373  voter     follower\n" +
			"n2  n2.example:7374  n2.example:7373  voter     leader\n" +
			"n4  n4.example:7374  -                nonvoter  follower\n"
		if code != exitOK || stdout != want {
			t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		MustFakeServer(t, answers)
		stdout, stderr, code := runCLI(t, "", "cluster", "members", "--json")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var got api.ClusterMembers
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("not one JSON document: %v\n%s", err, stdout)
		}
		if len(got.Members) != 3 || !got.Members[1].Leader || got.Members[2].Suffrage != api.SuffrageNonvoter {
			t.Errorf("members = %+v", got.Members)
		}
	})
	t.Run("NotAllowed", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{
			"GET /v1/cluster/members": {403, `{"message":"not authorized: insufficient permissions"}`},
		})
		_, stderr, code := runCLI(t, "", "cluster", "members")
		if code != exitRefused || stderr != "minkms: not authorized: insufficient permissions\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestClusterAddNode(t *testing.T) {
	added := `{"id":"n4","peer_address":"n4.example:7374","api_address":"n4.example:7373","suffrage":"nonvoter","leader":false}`
	t.Run("Text", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{"POST /v1/cluster/members": {200, added}})
		stdout, stderr, code := runCLI(t, "", "cluster", "add-node", "n4.example:7374")
		want := "Added node n4 (n4.example:7374) as a non-voter; it becomes a voter once it has caught up\n"
		if code != exitOK || stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		reqs := srv.Requests()
		if len(reqs) != 1 || !jsonEqual(reqs[0].body, `{"address":"n4.example:7374"}`) {
			t.Errorf("requests %+v", reqs)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"POST /v1/cluster/members": {200, added}})
		stdout, stderr, code := runCLI(t, "", "cluster", "add-node", "n4.example:7374", "--json")
		var got api.ClusterMember
		if code != exitOK || json.Unmarshal([]byte(stdout), &got) != nil || got.ID != "n4" || got.APIAddress != "n4.example:7373" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{
			"POST /v1/cluster/members": {400, `{"message":"node refused: n4.example:7374 holds another root key"}`},
		})
		_, stderr, code := runCLI(t, "", "cluster", "add-node", "n4.example:7374")
		if code != exitRefused || stderr != "minkms: node refused: n4.example:7374 holds another root key\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("OutcomeUnknown", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{
			"POST /v1/cluster/members": {500, `{"message":"the outcome of the write is unknown"}`},
		})
		_, stderr, code := runCLI(t, "", "cluster", "add-node", "n4.example:7374")
		if code != exitRefused || stderr != "minkms: the outcome of the write is unknown\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if n := len(srv.Requests()); n != 1 {
			t.Errorf("%d requests sent, want 1", n)
		}
	})
	t.Run("MissingArgument", func(t *testing.T) {
		MustFakeServer(t, nil)
		_, stderr, code := runCLI(t, "", "cluster", "add-node")
		if code != exitLocal || !strings.HasPrefix(stderr, "minkms: usage: minkms cluster add-node HOST:PORT") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestClusterRemoveNode(t *testing.T) {
	t.Run("Removed", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{"DELETE /v1/cluster/members/n2": {200, ""}})
		stdout, stderr, code := runCLI(t, "", "cluster", "remove-node", "n2")
		if code != exitOK || stdout != "Removed node n2\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].method != "DELETE" {
			t.Errorf("requests %+v", reqs)
		}
	})
	t.Run("NotMember", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"DELETE /v1/cluster/members/n9": {404, `{"message":"not a member: n9"}`}})
		stdout, stderr, code := runCLI(t, "", "cluster", "remove-node", "n9")
		if code != exitRefused || stdout != "" || stderr != "minkms: not a member: n9\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}
