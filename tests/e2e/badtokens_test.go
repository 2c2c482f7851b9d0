package e2e

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// signRS256 signs header.payload with key.
func signRS256(t *testing.T, key *rsa.PrivateKey, header, payload map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, payload)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// Under Strict every token that is not a valid Dex token for mcp-agent is
// rejected with the same 401 as a missing one.
func TestBadTokensRejected(t *testing.T) {
	d, g := dex(t), strictGateway(t)
	mcpURL := g.URL() + "/mcp"
	good := agentToken(t, d)
	header, payload, parts := jwtParts(t, good)

	// Control: the token the bad ones are made from is accepted.
	requireToolList(t, walkthroughCurl(t, mcpURL, good))

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Dex's JWKS, byte for byte: the "secret" of an RS256→HS256 confusion.
	resp, err := http.Get(d.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	tampered := func() string {
		p := maps.Clone(payload)
		p["email"] = harness.AdminUser
		p["groups"] = []string{"mcp-admins", "mcp-users"}
		return parts[0] + "." + b64JSON(t, p) + "." + parts[2]
	}
	flipped := func(part int) string {
		raw, err := b64.DecodeString(parts[part])
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0x01
		p := append([]string(nil), parts...)
		p[part] = b64.EncodeToString(raw)
		return p[0] + "." + p[1] + "." + p[2]
	}
	randomKid := func() string {
		b := make([]byte, 8)
		rand.Read(b)
		return hex.EncodeToString(b)
	}

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"not a JWT", "not-a-jwt"},
		{"empty bearer", " "},
		{"alg none", b64JSON(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."},
		{"alg none with kid", b64JSON(t, map[string]any{"alg": "none", "kid": header["kid"]}) + "." + parts[1] + "."},
		{"tampered payload", tampered()},
		{"flipped payload byte", flipped(1)},
		{"flipped signature byte", flipped(2)},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"unknown kid", signRS256(t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": randomKid()}, payload)},
		{"foreign key with Dex's kid", signRS256(t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": header["kid"]}, payload)},
		{"no kid", signRS256(t, key, map[string]any{"alg": "RS256", "typ": "JWT"}, payload)},
		{"HS256 keyed with the JWKS", func() string {
			input := b64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": header["kid"]}) + "." + parts[1]
			mac := hmac.New(sha256.New, jwks)
			mac.Write([]byte(input))
			return input + "." + b64.EncodeToString(mac.Sum(nil))
		}()},
		{"wrong audience", d.PasswordToken(t, harness.OtherClient, harness.OtherSecret, harness.AgentUser, harness.AgentPass)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireUnauthorized(t, g, walkthroughCurl(t, mcpURL, tc.token))
		})
	}

	t.Run("token in query parameter", func(t *testing.T) {
		// bearerMethodsSupported is [header]: a token elsewhere is no token.
		requireUnauthorized(t, g, walkthroughCurl(t, mcpURL+"?access_token="+good, ""))
	})
	t.Run("Basic scheme", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(toolsListBody))
		req.SetBasicAuth(harness.ClientID, harness.ClientSecret)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "*/*")
		resp, err := curlClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		requireUnauthorized(t, g, curlResult{Status: resp.StatusCode, Header: resp.Header, Body: body})
	})
}

// A Dex token is rejected by a gateway whose policy names another issuer,
// although its signature verifies against the same JWKS.
func TestWrongIssuerRejected(t *testing.T) {
	d, u := dex(t), upstream(t)
	auth := harness.ForDex(d, "Strict")
	auth.Issuer = "http://127.0.0.1:" + strconv.Itoa(d.Port()) + "/realms/other"
	g := gatewayFor(t, harness.Config{UpstreamPort: u.Port(), Auth: auth})
	tok := agentToken(t, d)
	// Control: the walkthrough gateway accepts this token.
	requireToolList(t, walkthroughCurl(t, strictGateway(t).URL()+"/mcp", tok))
	requireUnauthorized(t, g, walkthroughCurl(t, g.URL()+"/mcp", tok))
}

// A token that worked is rejected once it has expired, cache or not. Dex
// issues 5-second tokens here; the test waits for the expiry (and whatever
// clock-skew leeway the gateway allows, up to a minute).
func TestExpiredTokenRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a token to expire")
	}
	t.Parallel() // mostly waiting: overlap it with the other slow tests
	u := upstream(t)
	short := harness.StartDex(t, harness.DexOptions{TokenExpiry: 5 * time.Second})
	g := gatewayFor(t, harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(short, "Strict")})
	mcpURL := g.URL() + "/mcp"

	tok := short.PasswordToken(t, harness.ClientID, harness.ClientSecret, harness.AgentUser, harness.AgentPass)
	_, payload, _ := jwtParts(t, tok)
	expN, err := payload["exp"].(json.Number).Int64()
	if err != nil {
		t.Fatalf("exp claim: %v", err)
	}
	exp := time.Unix(expN, 0)

	// Fresh, it works (and is now in the gateway's cache, if it has one).
	requireToolList(t, walkthroughCurl(t, mcpURL, tok))
	if time.Now().After(exp) {
		t.Fatalf("token expired before the first request; the machine is too slow for a 5s token")
	}

	const maxLeeway = 65 * time.Second
	time.Sleep(time.Until(exp))
	deadline := exp.Add(maxLeeway)
	for {
		r := walkthroughCurl(t, mcpURL, tok)
		if r.Status == http.StatusUnauthorized {
			t.Logf("rejected %v after exp", time.Since(exp).Round(100*time.Millisecond))
			requireUnauthorized(t, g, r)
			return
		}
		if r.Status != http.StatusOK {
			t.Fatalf("got %s\nwant 200 (leeway) or 401 (expired)", r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted %v after its exp", maxLeeway)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
