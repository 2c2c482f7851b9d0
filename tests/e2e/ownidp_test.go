package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// ownIdP is a JWKS endpoint the test controls: a real HTTP server on
// loopback serving the public halves of real RSA keys, counting its hits,
// and able to go down and come back on the same port. Tokens the attack and
// fault tests need but Dex will not issue (expired, not yet valid, other
// issuer, no audience, claims with control characters, a rotated key) are
// signed with its keys. Valid everyday tokens still come from Dex.
type ownIdP struct {
	t    *testing.T
	addr string
	hits atomic.Int64

	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // by kid, all published
	kid  string                     // the kid new tokens are signed with
	srv  *http.Server
}

func startOwnIdP(t *testing.T) *ownIdP {
	t.Helper()
	p := &ownIdP{t: t, keys: map[string]*rsa.PrivateKey{}}
	p.kid = p.AddKey()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

func (p *ownIdP) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.serveJWKS), ReadHeaderTimeout: 5 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (p *ownIdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/keys" {
		http.NotFound(w, r)
		return
	}
	p.hits.Add(1)
	p.mu.Lock()
	var keys []map[string]string
	for kid, k := range p.keys {
		keys = append(keys, map[string]string{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64.EncodeToString(k.N.Bytes()),
			"e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// Issuer is the iss the gateway is configured to accept.
func (p *ownIdP) Issuer() string { return "http://" + p.addr + "/realms/own" }

// JWKSURL is where the gateway fetches the keys.
func (p *ownIdP) JWKSURL() string { return "http://" + p.addr + "/keys" }

// Auth is the authentication policy of a gateway trusting this IdP.
func (p *ownIdP) Auth() *harness.AuthConfig {
	return &harness.AuthConfig{Issuer: p.Issuer(), Mode: "Strict", JWKS: harness.JWKSURL, JWKSURL: p.JWKSURL()}
}

// AddKey publishes a new signing key and returns its kid; tokens keep being
// signed with the current key until Use is called.
func (p *ownIdP) AddKey() string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		p.t.Fatal(err)
	}
	kid := randomHex(8)
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
	return kid
}

// Use makes kid the key new tokens are signed with.
func (p *ownIdP) Use(kid string) {
	p.mu.Lock()
	p.kid = kid
	p.mu.Unlock()
}

// Stop takes the JWKS endpoint down: the port refuses connections.
func (p *ownIdP) Stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start brings the endpoint back on the same port.
func (p *ownIdP) Start() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("restarting the JWKS endpoint on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Claims returns valid claims for the gateway's policy (audience mcp-agent,
// an hour to live); tests change what they attack.
func (p *ownIdP) Claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": p.Issuer(), "sub": "own-user", "aud": harness.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": "own-user@example.com",
	}
}

// Sign signs claims with the current key (RS256, its kid).
func (p *ownIdP) Sign(claims map[string]any) string {
	p.mu.Lock()
	kid, key := p.kid, p.keys[p.kid]
	p.mu.Unlock()
	return signRS256(p.t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
}

// SignKID signs claims with the current key but names another kid.
func (p *ownIdP) SignKID(claims map[string]any, kid string) string {
	p.mu.Lock()
	key := p.keys[p.kid]
	p.mu.Unlock()
	return signRS256(p.t, key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
