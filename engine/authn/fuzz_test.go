package authn

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpgate/mcpgate/ir"
)

// fuzzKey is fixed so that the seed tokens stay valid across runs.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func fuzzToken(t testing.TB, header map[string]any, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// segments decodes the three parts of a compact JWT, nil if it has not three.
func segments(tok string) [][]byte {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	out := make([][]byte, 3)
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
		if err != nil {
			return nil
		}
		out[i] = b
	}
	return out
}

// FuzzVerify throws arbitrary bearer tokens at a verifier: it must never
// panic, must give every present token a verdict with a stable reason, and
// must accept only the tokens that were actually signed (byte-for-byte the
// same header, claims and signature, whatever base64 variant spells them).
// Header tricks (alg none, HS256 keyed with public material, kid
// injection) start from the seeds.
func FuzzVerify(f *testing.F) {
	claims := jwt.MapClaims{"iss": "https://idp.test", "aud": "mcp", "sub": "u", "exp": 4102444800, "iat": 1700000000}
	valid := fuzzToken(f, map[string]any{"kid": "k1"}, claims)
	noKid := fuzzToken(f, nil, claims)
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		valid,
		noKid,
		fuzzToken(f, map[string]any{"kid": "other"}, claims),
		b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		b64([]byte(`{"alg":"HS256","kid":"k1"}`)) + "." + parts[1] + "." + parts[2],
		b64([]byte(`{"alg":"EdDSA","kid":["k1"]}`)) + "." + parts[1] + "." + parts[2],
		b64([]byte(`{"alg":"EdDSA","kid":"k1","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2],
		parts[0] + "." + b64([]byte(`{"iss":"https://idp.test","aud":["mcp","x"],"exp":1e400}`)) + "." + parts[2],
		"a.b.c", "..", "", strings.Repeat("A", 100),
	} {
		f.Add(s)
	}
	signed := [][][]byte{segments(valid), segments(noKid)}
	v, err := New(context.Background(), &ir.Authn{
		Key: "fuzz", Issuer: "https://idp.test", Audiences: []string{"mcp"},
		JWKSInline: string(jwksJSON(f, map[string]crypto.PublicKey{"k1": fuzzKey.Public()})),
	}, Options{CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	reasons := map[string]bool{ReasonMalformed: true, ReasonUnsupportedAlg: true, ReasonUnknownKey: true,
		ReasonJWKSUnavailable: true, ReasonSignature: true, ReasonExpired: true, ReasonNotYetValid: true,
		ReasonIssuedInFuture: true, ReasonMissingExpiry: true, ReasonIssuer: true, ReasonAudience: true, ReasonClaims: true}

	f.Fuzz(func(t *testing.T, tok string) {
		r := v.Verify(context.Background(), tok)
		if tok == "" {
			if r.Present {
				t.Fatal("an empty token is present")
			}
			return
		}
		if !r.Present {
			t.Fatal("a token is not present")
		}
		if !r.Valid {
			if !reasons[r.Error] {
				t.Fatalf("reason %q is not one of the stable reasons", r.Error)
			}
			if r.Claims != nil {
				t.Fatal("claims of an invalid token")
			}
			return
		}
		got := segments(tok)
		genuine := false
		for _, want := range signed {
			genuine = genuine || got != nil && bytes.Equal(got[0], want[0]) && bytes.Equal(got[1], want[1]) && bytes.Equal(got[2], want[2])
		}
		if !genuine {
			t.Fatalf("accepted a token that was never signed: %q", tok)
		}
		if r.Claims == nil || r.Subject != "u" {
			t.Fatalf("valid without its claims: %+v", r)
		}
	})
}
