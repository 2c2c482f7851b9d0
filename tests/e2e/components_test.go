package e2e

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The components work without the gateway, so a failure elsewhere in this
// package points at the gateway, not at the test rig.

// Dex issues the tokens the policies are written against.
func TestComponentDexTokens(t *testing.T) {
	d := dex(t)
	for _, tc := range []struct {
		client, secret, user, pass string
		aud                        string
		groups                     []any
	}{
		{harness.ClientID, harness.ClientSecret, harness.AgentUser, harness.AgentPass, "mcp-agent", []any{"mcp-users"}},
		{harness.ClientID, harness.ClientSecret, harness.AdminUser, harness.AdminPass, "mcp-agent", []any{"mcp-admins", "mcp-users"}},
		{harness.ClientID, harness.ClientSecret, harness.GuestUser, harness.GuestPass, "mcp-agent", nil},
		{harness.OtherClient, harness.OtherSecret, harness.AgentUser, harness.AgentPass, "other-client", []any{"mcp-users"}},
	} {
		t.Run(tc.client+"/"+tc.user, func(t *testing.T) {
			header, claims, _ := jwtParts(t, d.PasswordToken(t, tc.client, tc.secret, tc.user, tc.pass))
			if header["alg"] != "RS256" || header["kid"] == nil {
				t.Errorf("header = %v, want alg RS256 with a kid", header)
			}
			var groups any // absent for a user without groups
			if tc.groups != nil {
				groups = tc.groups
			}
			want := map[string]any{
				"iss":                d.Issuer(),
				"aud":                tc.aud,
				"email":              tc.user,
				"preferred_username": tc.user,
				"groups":             groups,
			}
			for k, v := range want {
				if !reflect.DeepEqual(claims[k], v) {
					t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
				}
			}
			for _, k := range []string{"sub", "exp", "iat"} {
				if claims[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		ctx := testContext(t, 10*time.Second)
		if _, err := d.Token(ctx, harness.ClientID, harness.ClientSecret, harness.AgentUser, "nope"); err == nil {
			t.Error("got a token for a wrong password")
		}
	})
	t.Run("keys", func(t *testing.T) {
		resp, err := http.Get(d.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", d.JWKSURL(), resp.StatusCode)
		}
	})
}

// server-everything answers the Go SDK directly and through the Recorder,
// and the walkthrough's curl directly gets what the gateway has to fix: 406.
func TestComponentUpstream(t *testing.T) {
	u := upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	for name, url := range map[string]string{"direct": u.URL(), "recorder": rec.URL()} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			cs := connectSDK(t, ctx, url, "direct-test-token", nil, nil)
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
			if err != nil {
				t.Fatal(err)
			}
			if got := textOf(res); got != "The sum of 2 and 3 is 5." {
				t.Errorf("get-sum = %q", got)
			}
		})
	}
	sawAuth := slices.ContainsFunc(rec.Requests(), func(r harness.RecordedRequest) bool {
		return r.Header.Get("Authorization") == "Bearer direct-test-token"
	})
	if !sawAuth {
		t.Errorf("the Recorder did not record the Authorization header it was sent; it could not catch a leak")
	}
	t.Run("progress streamed", func(t *testing.T) {
		checkStreamedProgress(t, u.URL(), "direct-test-token")
	})
	t.Run("walkthrough curl without gateway", func(t *testing.T) {
		r := walkthroughCurl(t, u.URL(), "")
		if r.Status != http.StatusNotAcceptable {
			t.Errorf("got %s\nwant 406 (server-everything needs Accept: application/json, text/event-stream)", r)
		}
	})
}

// The MCP Inspector CLI talks to server-everything directly.
func TestComponentInspector(t *testing.T) {
	u := upstream(t)
	out := runInspector(t, u.URL(), "--transport", "http", "--method", "tools/list")
	if !strings.Contains(string(out), `"get-sum"`) {
		t.Errorf("inspector tools/list output lacks get-sum:\n%s", out)
	}
}
