package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/ir"
)

const (
	testIssuer = "https://idp.example.com"
	testAud    = "mcp://gateway"
)

// t0 is the fixed "now" of every test clock.
var t0 = time.Unix(1_800_000_000, 0)

// Keys are generated once: RSA generation dominates the test run otherwise.
var (
	rsaKey  = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	ecKey   = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	edKey   = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// clock is a settable Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock           { c := &clock{}; c.set(t0); return c }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// idp serves a mutable JWKS and counts fetches.
type idp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]crypto.PublicKey
	hits atomic.Int32
	down atomic.Bool
}

func newIDP(t *testing.T, keys map[string]crypto.PublicKey) *idp {
	t.Helper()
	p := &idp{keys: keys}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		if p.down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		doc := jwksJSON(t, p.keys)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(keys map[string]crypto.PublicKey) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func jwksJSON(t testing.TB, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, pub := range keys {
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		require.NoError(t, err)
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	doc, err := json.Marshal(set)
	require.NoError(t, err)
	return doc
}

func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"sub": "alice",
		"aud": testAud,
		"iat": t0.Unix() - 60,
		"exp": t0.Unix() + 3600,
	}
}

// sign builds a token; kid "" leaves the header without a kid.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
			continue
		}
		c[k] = kv[i+1]
	}
	return c
}

func newVerifier(t testing.TB, cfg *ir.Authn, opts Options) *Verifier {
	t.Helper()
	v, err := New(context.Background(), cfg, opts)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	return v
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestVerify(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{
		"rsa": &rsaKey().PublicKey,
		"ec":  &ecKey().PublicKey,
		"ed":  edKey().Public(),
	})
	clk := newClock()
	strict := newVerifier(t, &ir.Authn{Key: "ns/strict", Issuer: testIssuer, Audiences: []string{testAud, "mcp://other"}, JWKSURL: p.srv.URL},
		Options{Now: clk.now})
	anyAud := newVerifier(t, &ir.Authn{Key: "ns/any", Issuer: testIssuer, JWKSURL: p.srv.URL}, Options{Now: clk.now})

	pubDER := must(x509.MarshalPKIXPublicKey(&rsaKey().PublicKey))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rs := sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", baseClaims())
	parts := strings.Split(rs, ".")
	sig := []byte(parts[2])
	// Change a character well inside the signature (the last one may only
	// carry padding bits), keeping it valid base64url.
	if sig[len(sig)/2] == 'A' {
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)
	forged := strings.Split(sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "sub", "mallory")), ".")
	tamperedBody := parts[0] + "." + forged[1] + "." + parts[2]

	tests := []struct {
		name    string
		v       *Verifier
		token   string
		wantErr string // "" means valid
		wantSub string
	}{
		{name: "valid RS256", v: strict, token: rs, wantSub: "alice"},
		{name: "valid PS256", v: strict, token: sign(t, jwt.SigningMethodPS256, rsaKey(), "rsa", baseClaims()), wantSub: "alice"},
		{name: "valid ES256", v: strict, token: sign(t, jwt.SigningMethodES256, ecKey(), "ec", baseClaims()), wantSub: "alice"},
		{name: "valid EdDSA", v: strict, token: sign(t, jwt.SigningMethodEdDSA, edKey(), "ed", baseClaims()), wantSub: "alice"},
		{name: "expired", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "exp", t0.Unix()-3600)), wantErr: ReasonExpired},
		{name: "expired within leeway", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "exp", t0.Unix()-10)), wantSub: "alice"},
		{name: "no exp", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "exp", nil)), wantErr: ReasonMissingExpiry},
		{name: "nbf in future", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "nbf", t0.Unix()+600)), wantErr: ReasonNotYetValid},
		{name: "iat in future", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "iat", t0.Unix()+600)), wantErr: ReasonIssuedInFuture},
		{name: "wrong issuer", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "iss", "https://evil.example.com")), wantErr: ReasonIssuer},
		{name: "issuer with trailing slash", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "iss", testIssuer+"/")), wantErr: ReasonIssuer},
		{name: "missing issuer", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "iss", nil)), wantErr: ReasonIssuer},
		{name: "wrong audience", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", "mcp://elsewhere")), wantErr: ReasonAudience},
		{name: "missing audience", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", nil)), wantErr: ReasonAudience},
		{name: "audience array with an allowed one", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", []string{"mcp://elsewhere", "mcp://other"})), wantSub: "alice"},
		{name: "audience array without an allowed one", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", []string{"mcp://x", "mcp://y"})), wantErr: ReasonAudience},
		{name: "no audiences configured accepts any", v: anyAud, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", "mcp://elsewhere")), wantSub: "alice"},
		{name: "no audiences configured accepts none", v: anyAud, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", with(baseClaims(), "aud", nil)), wantSub: "alice"},
		{name: "alg none", v: strict, token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "alg none without kid", v: strict, token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "HS256 with RSA public key PEM", v: strict, token: sign(t, jwt.SigningMethodHS256, pubPEM, "rsa", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "HS256 with RSA public key DER", v: strict, token: sign(t, jwt.SigningMethodHS256, pubDER, "rsa", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "HS256 with RSA public key PEM without kid", v: strict, token: sign(t, jwt.SigningMethodHS256, pubPEM, "", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "ES256 under an RSA kid", v: strict, token: sign(t, jwt.SigningMethodES256, ecKey(), "rsa", baseClaims()), wantErr: ReasonUnsupportedAlg},
		{name: "unknown alg", v: strict, token: "eyJhbGciOiJYWVoiLCJraWQiOiJyc2EifQ." + parts[1] + "." + parts[2], wantErr: ReasonUnsupportedAlg},
		{name: "tampered signature", v: strict, token: tamperedSig, wantErr: ReasonSignature},
		{name: "tampered claims", v: strict, token: tamperedBody, wantErr: ReasonSignature},
		{name: "signed by a key not in the jwks", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey2(), "rsa", baseClaims()), wantErr: ReasonSignature},
		{name: "no kid, single candidate", v: strict, token: sign(t, jwt.SigningMethodRS256, rsaKey(), "", baseClaims()), wantSub: "alice"},
		{name: "two segments", v: strict, token: parts[0] + "." + parts[1], wantErr: ReasonMalformed},
		{name: "garbage", v: strict, token: "not-a-jwt", wantErr: ReasonMalformed},
		{name: "bad base64 header", v: strict, token: "!!!." + parts[1] + "." + parts[2], wantErr: ReasonMalformed},
		{name: "oversized", v: strict, token: strings.Repeat("a", MaxTokenSize+1), wantErr: ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.v.Verify(testCtx(t), tc.token)
			assert.True(t, r.Present, "got Present false, want true")
			if tc.wantErr != "" {
				assert.False(t, r.Valid, "got Valid true, want false")
				assert.Equal(t, tc.wantErr, r.Error)
				assert.Nil(t, r.Claims, "got claims on an invalid token")
				assert.Empty(t, r.Subject)
				assert.NotContains(t, r.Error, tc.token)
				return
			}
			require.True(t, r.Valid, "got invalid (%q), want valid", r.Error)
			assert.Empty(t, r.Error)
			assert.Equal(t, tc.wantSub, r.Subject)
			unverified, _, err := jwt.NewParser().ParseUnverified(tc.token, jwt.MapClaims{})
			require.NoError(t, err)
			wantExp, err := unverified.Claims.GetExpirationTime()
			require.NoError(t, err)
			assert.Equal(t, wantExp.Unix(), r.Expiry.Unix())
			require.NotNil(t, r.Claims)
			assert.Equal(t, ast.String(tc.wantSub), r.Claims.(ast.Object).Get(ast.StringTerm("sub")).Value)
			require.NotNil(t, r.Header)
		})
	}
	// The bad-key cases above each asked for a refresh only if their kid was
	// unknown; none was, so only the start-up fetches happened.
	assert.LessOrEqual(t, p.hits.Load(), int32(2), "got %d jwks fetches, want at most 2", p.hits.Load())
}

func TestVerifyEmptyToken(t *testing.T) {
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSInline: string(jwksJSON(t, map[string]crypto.PublicKey{"rsa": &rsaKey().PublicKey}))}, Options{})
	r := v.Verify(context.Background(), "")
	assert.Equal(t, Result{}, r)
}

func TestHeaderAndClaimsValues(t *testing.T) {
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSInline: string(jwksJSON(t, map[string]crypto.PublicKey{"rsa": &rsaKey().PublicKey}))}, Options{Now: clk.now})

	// 2^53+1 cannot be represented by a float64; it must survive exactly.
	claims := with(baseClaims(), "big", json.Number("9007199254740993"), "scope", "tools:read tools:call", "groups", []string{"a", "b"})
	r := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa", claims))
	require.True(t, r.Valid, r.Error)
	obj := r.Claims.(ast.Object)
	tests := []struct {
		claim string
		want  ast.Value
	}{
		{"exp", ast.Number(fmt.Sprint(t0.Unix() + 3600))},
		{"big", ast.Number("9007199254740993")},
		{"scope", ast.String("tools:read tools:call")},
		{"groups", ast.NewArray(ast.StringTerm("a"), ast.StringTerm("b"))},
	}
	for _, tc := range tests {
		t.Run(tc.claim, func(t *testing.T) {
			got := obj.Get(ast.StringTerm(tc.claim))
			require.NotNil(t, got, "claim %s missing", tc.claim)
			assert.Equal(t, 0, got.Value.Compare(tc.want), "got %v, want %v", got.Value, tc.want)
		})
	}
	wantHeader := ast.MustParseTerm(`{"alg": "RS256", "kid": "rsa", "typ": "JWT"}`).Value
	assert.Equal(t, 0, r.Header.Compare(wantHeader), "got header %v, want %v", r.Header, wantHeader)

	// An invalid but decodable token still reports its header.
	bad := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey(), "nope", claims))
	assert.Equal(t, ReasonUnknownKey, bad.Error)
	require.NotNil(t, bad.Header)
	assert.Equal(t, ast.String("nope"), bad.Header.(ast.Object).Get(ast.StringTerm("kid")).Value)
}

func TestUnknownKidRefreshes(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", Issuer: testIssuer, JWKSURL: p.srv.URL}, Options{Now: clk.now, RefreshRateLimit: time.Millisecond})

	r := v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims()))
	require.True(t, r.Valid, r.Error)
	hits := p.hits.Load()

	// The IdP rotates in a new key after we started.
	p.set(map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey, "k2": &ecKey().PublicKey})
	time.Sleep(2 * time.Millisecond) // let the rate limit window pass
	r = v.Verify(testCtx(t), sign(t, jwt.SigningMethodES256, ecKey(), "k2", baseClaims()))
	require.True(t, r.Valid, "got %q, want the rotated-in key to verify", r.Error)
	assert.Equal(t, hits+1, p.hits.Load(), "got %d fetches, want one more", p.hits.Load()-hits)
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSURL: p.srv.URL}, Options{Now: clk.now})
	r := v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims()))
	require.True(t, r.Valid, r.Error)

	var wg sync.WaitGroup
	for i := range 100 {
		tok := sign(t, jwt.SigningMethodRS256, rsaKey(), fmt.Sprintf("random-%d", i), baseClaims())
		wg.Go(func() {
			r := v.Verify(context.Background(), tok)
			assert.Equal(t, ReasonUnknownKey, r.Error)
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, p.hits.Load(), int32(2), "got %d jwks fetches for 100 unknown kids, want at most 2", p.hits.Load())
}

func TestJWKSOutageKeepsKeys(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSURL: p.srv.URL, CacheSeconds: 1}, Options{Now: clk.now, RefreshRateLimit: time.Millisecond})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims())
	require.True(t, v.Verify(testCtx(t), tok).Valid)

	p.srv.Close()
	// Force a failing refresh: an unknown kid makes us fetch, and it fails.
	time.Sleep(2 * time.Millisecond)
	before := v.keys.Load()
	r := v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k-unknown", baseClaims()))
	assert.Equal(t, ReasonUnknownKey, r.Error)
	assert.Same(t, before, v.keys.Load(), "key set replaced after a failed refresh")

	// Both the cached token and a new one (not in the cache) still verify.
	assert.True(t, v.Verify(testCtx(t), tok).Valid)
	fresh := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", with(baseClaims(), "jti", "fresh"))
	r = v.Verify(testCtx(t), fresh)
	assert.True(t, r.Valid, "got %q after the JWKS went away, want valid", r.Error)
}

func TestJWKSUnavailableAtStart(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	p.down.Store(true)
	clk := newClock()
	start := time.Now()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSURL: p.srv.URL}, Options{Now: clk.now, RefreshRateLimit: time.Millisecond})
	assert.Less(t, time.Since(start), 100*time.Millisecond, "New blocked on the JWKS")
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims())

	r := v.Verify(testCtx(t), tok)
	assert.Equal(t, ReasonJWKSUnavailable, r.Error)

	// Once the IdP is back, the next token with an unknown kid picks the keys up.
	p.down.Store(false)
	time.Sleep(2 * time.Millisecond)
	r = v.Verify(testCtx(t), tok)
	assert.True(t, r.Valid, "got %q after the JWKS came back, want valid", r.Error)
}

func TestKeyRemovedInvalidatesCache(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey, "k2": &ecKey().PublicKey})
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSURL: p.srv.URL}, Options{Now: clk.now, RefreshRateLimit: time.Millisecond})
	tok1 := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims())
	tok2 := sign(t, jwt.SigningMethodES256, ecKey(), "k2", baseClaims())
	require.True(t, v.Verify(testCtx(t), tok1).Valid)
	r2 := v.Verify(testCtx(t), tok2)
	require.True(t, r2.Valid)

	// k1 is revoked; an unknown kid makes us notice.
	p.set(map[string]crypto.PublicKey{"k2": &ecKey().PublicKey})
	time.Sleep(2 * time.Millisecond)
	v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k3", baseClaims()))

	r := v.Verify(testCtx(t), tok1)
	assert.False(t, r.Valid, "got a cached verdict for a token signed by a revoked key")
	assert.Equal(t, ReasonUnknownKey, r.Error)
	// k2 is unchanged, so its cached verdict survives the refresh.
	again := v.Verify(testCtx(t), tok2)
	assert.True(t, again.Claims == r2.Claims, "got a re-verified result, want the cached one")
}

func TestCache(t *testing.T) {
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSInline: string(jwksJSON(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey}))},
		Options{Now: clk.now, Leeway: 30 * time.Second})
	exp := t0.Add(time.Hour)
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", with(baseClaims(), "exp", exp.Unix()))

	first := v.Verify(context.Background(), tok)
	require.True(t, first.Valid, first.Error)
	assert.Equal(t, 1, v.cache.len())

	tests := []struct {
		name      string
		now       time.Time
		wantValid bool
		wantErr   string
	}{
		{"hit", t0.Add(time.Minute), true, ""},
		{"hit just before exp", exp.Add(-time.Second), true, ""},
		{"hit within leeway", exp.Add(29 * time.Second), true, ""},
		{"expired past leeway", exp.Add(31 * time.Second), false, ReasonExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.set(tc.now)
			r := v.Verify(context.Background(), tok)
			assert.Equal(t, tc.wantValid, r.Valid)
			assert.Equal(t, tc.wantErr, r.Error)
			if tc.wantValid {
				// The same ast value, not a rebuilt one: the cache answered.
				assert.True(t, r.Claims == first.Claims, "got rebuilt claims, want the cached value")
				assert.Equal(t, first, r)
			}
		})
	}
	assert.Equal(t, 0, v.cache.len(), "expired entry still cached")

	// Invalid tokens are never cached.
	clk.set(t0)
	bad := sign(t, jwt.SigningMethodRS256, rsaKey2(), "k1", baseClaims())
	for range 2 {
		assert.Equal(t, ReasonSignature, v.Verify(context.Background(), bad).Error)
	}
	assert.Equal(t, 0, v.cache.len())
}

func TestCacheBounded(t *testing.T) {
	clk := newClock()
	v := newVerifier(t, &ir.Authn{Key: "k", JWKSInline: string(jwksJSON(t, map[string]crypto.PublicKey{"k1": &ecKey().PublicKey}))},
		Options{Now: clk.now, CacheSize: 32})
	for i := range 200 {
		r := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey(), "k1", with(baseClaims(), "jti", fmt.Sprint(i))))
		require.True(t, r.Valid, r.Error)
	}
	assert.LessOrEqual(t, v.cache.len(), 32, "got %d cached entries, want at most 32", v.cache.len())
}

func TestNewConfigErrors(t *testing.T) {
	inline := string(jwksJSON(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey}))
	tests := []struct {
		name string
		cfg  *ir.Authn
	}{
		{"nil", nil},
		{"no jwks", &ir.Authn{Key: "k"}},
		{"both", &ir.Authn{Key: "k", JWKSURL: "https://idp/jwks", JWKSInline: inline}},
		{"relative url", &ir.Authn{Key: "k", JWKSURL: "/jwks"}},
		{"bad scheme", &ir.Authn{Key: "k", JWKSURL: "file:///etc/jwks"}},
		{"inline not json", &ir.Authn{Key: "k", JWKSInline: "{"}},
		{"inline empty", &ir.Authn{Key: "k", JWKSInline: `{"keys":[]}`}},
		{"inline symmetric", &ir.Authn{Key: "k", JWKSInline: `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`}},
		{"negative cache", &ir.Authn{Key: "k", JWKSInline: inline, CacheSeconds: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(context.Background(), tc.cfg, Options{})
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, v)
		})
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	good := jwksJSON(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	var set map[string][]map[string]any
	require.NoError(t, json.Unmarshal(good, &set))
	set["keys"] = append(set["keys"],
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": set["keys"][0]["n"], "e": "AQAB"},
		map[string]any{"kty": "RSA", "kid": "pinned-hs", "alg": "HS256", "n": set["keys"][0]["n"], "e": "AQAB"},
	)
	doc := must(json.Marshal(set))
	ks, skipped, err := parseJWKS(doc, nil)
	require.NoError(t, err)
	assert.Len(t, skipped, 3)
	assert.Len(t, ks.all, 1)
	assert.NotNil(t, ks.byKID["k1"])
}

func TestBearer(t *testing.T) {
	tests := []struct {
		header    string
		wantToken string
		wantOK    bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer   abc", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"Bearer abc def", "", false},
		{"Bearer abc\tdef", "", false},
		{"Bearer\tabc", "", false},
		{"DPoP abc", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			got, ok := Bearer(tc.header)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.wantToken, got)
		})
	}
}

func TestCloseStopsRefresh(t *testing.T) {
	p := newIDP(t, map[string]crypto.PublicKey{"k1": &rsaKey().PublicKey})
	v, err := New(context.Background(), &ir.Authn{Key: "k", JWKSURL: p.srv.URL}, Options{Now: newClock().now})
	require.NoError(t, err)
	require.True(t, v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", baseClaims())).Valid)
	v.Close()
	v.Close() // idempotent
	hits := p.hits.Load()
	r := v.Verify(testCtx(t), sign(t, jwt.SigningMethodRS256, rsaKey(), "k2", baseClaims()))
	assert.Equal(t, ReasonUnknownKey, r.Error)
	assert.Equal(t, hits, p.hits.Load(), "got a jwks fetch after Close")
}

func benchVerifier(b *testing.B, cacheSize int) (*Verifier, map[string]string) {
	clk := newClock()
	v := newVerifier(b, &ir.Authn{
		Key:        "k",
		Issuer:     testIssuer,
		Audiences:  []string{testAud},
		JWKSInline: string(jwksJSON(b, map[string]crypto.PublicKey{"rsa": &rsaKey().PublicKey, "ec": &ecKey().PublicKey})),
	}, Options{Now: clk.now, CacheSize: cacheSize})
	return v, map[string]string{
		"RS256": sign(b, jwt.SigningMethodRS256, rsaKey(), "rsa", baseClaims()),
		"ES256": sign(b, jwt.SigningMethodES256, ecKey(), "ec", baseClaims()),
	}
}

// BenchmarkVerifyCached measures a repeated valid token: a SHA-256 and a
// lock-free map load.
func BenchmarkVerifyCached(b *testing.B) {
	v, toks := benchVerifier(b, 0)
	ctx := context.Background()
	tok := toks["RS256"]
	require.True(b, v.Verify(ctx, tok).Valid)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !v.Verify(ctx, tok).Valid {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !v.Verify(ctx, tok).Valid {
					b.Fatal("invalid")
				}
			}
		})
	})
}

// BenchmarkVerifyUncached measures a full verification: parse, signature,
// claims checks and the ast conversion.
func BenchmarkVerifyUncached(b *testing.B) {
	v, toks := benchVerifier(b, -1)
	ctx := context.Background()
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			tok := toks[alg]
			b.ReportAllocs()
			for b.Loop() {
				if !v.Verify(ctx, tok).Valid {
					b.Fatal("invalid")
				}
			}
		})
	}
}
