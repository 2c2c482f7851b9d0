package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// maxJWKSSize bounds a JWKS response; real sets are a few KiB.
const maxJWKSSize = 1 << 20

// verKey is one verification key with the algorithms it may verify.
// Pointers are kept stable across refreshes while the key is unchanged, so
// the token cache can tell "same key" from "rotated key" by comparing them.
type verKey struct {
	kid  string
	pub  crypto.PublicKey
	algs []string
}

func (k *verKey) allows(alg string) bool { return slices.Contains(k.algs, alg) }

func (k *verKey) equal(o *verKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := k.pub.(equaler)
	return ok && k.kid == o.kid && e.Equal(o.pub) && slices.Equal(k.algs, o.algs)
}

// keySet is an immutable snapshot of the usable keys of one JWKS.
type keySet struct {
	byKID map[string]*verKey
	all   []*verKey
}

// loaded tells "the JWKS has not arrived yet" from "the key is not in it".
func (ks *keySet) loaded() bool { return len(ks.all) > 0 }

func (ks *keySet) missing() error {
	if ks.loaded() {
		return errUnknownKey
	}
	return errJWKSUnavailable
}

// candidates are the keys that may verify a token without a kid.
func (ks *keySet) candidates(alg string) jwt.VerificationKeySet {
	var vks jwt.VerificationKeySet
	for _, k := range ks.all {
		if k.allows(alg) {
			vks.Keys = append(vks.Keys, k.pub)
		}
	}
	return vks
}

func (ks *keySet) canVerify(alg string) bool {
	return slices.ContainsFunc(ks.all, func(k *verKey) bool { return k.allows(alg) })
}

// sameKeys reports whether ks holds exactly the key pointers of o.
func (ks *keySet) sameKeys(o *keySet) bool {
	return o != nil && slices.Equal(ks.all, o.all)
}

// Algorithms per key type. HS* and "none" are never listed: a JWKS holds
// public keys, and accepting an HMAC over them would let anyone sign.
var (
	rsaAlgs     = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Algs = []string{"EdDSA"}
)

func asymmetric(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

// parseJWKS turns a JWK Set document into a key set. Keys we cannot use
// (encryption keys, symmetric keys, unknown types or curves, bad material)
// are skipped and reported in skipped, so one odd key at the IdP does not
// cost us the others. A set with no usable key is an error. Keys equal to
// one in prev keep prev's pointer so cached verdicts stay valid.
func parseJWKS(doc []byte, prev *keySet) (ks *keySet, skipped []error, err error) {
	var raw jwkset.JWKSMarshal
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, nil, fmt.Errorf("decode jwks: %w", err)
	}
	ks = &keySet{byKID: make(map[string]*verKey, len(raw.Keys))}
	for i, m := range raw.Keys {
		k, err := toVerKey(m)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, m.KID, err))
			continue
		}
		if k.kid != "" {
			if _, dup := ks.byKID[k.kid]; dup {
				skipped = append(skipped, fmt.Errorf("key %d: duplicate kid %q", i, k.kid))
				continue
			}
		}
		if prev != nil {
			if old := prev.find(k); old != nil {
				k = old
			}
		}
		if k.kid != "" {
			ks.byKID[k.kid] = k
		}
		ks.all = append(ks.all, k)
	}
	if len(ks.all) == 0 {
		return nil, skipped, errors.New("no usable signing keys")
	}
	return ks, skipped, nil
}

func (ks *keySet) find(k *verKey) *verKey {
	if k.kid != "" {
		if old := ks.byKID[k.kid]; old != nil && old.equal(k) {
			return old
		}
		return nil
	}
	for _, old := range ks.all {
		if old.kid == "" && old.equal(k) {
			return old
		}
	}
	return nil
}

func toVerKey(m jwkset.JWKMarshal) (*verKey, error) {
	if m.USE == jwkset.UseEnc {
		return nil, errors.New("encryption key")
	}
	// Private: false drops any private members an IdP leaks into its JWKS
	// and refuses symmetric (oct) keys outright.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, err
	}
	var algs []string
	switch pub := jwk.Key().(type) {
	case *rsa.PublicKey:
		algs = rsaAlgs
	case *ecdsa.PublicKey:
		// ES256 is defined for P-256 only, and so on: binding the curve
		// stops a signature made for one curve being checked on another.
		switch pub.Curve {
		case elliptic.P256():
			algs = []string{"ES256"}
		case elliptic.P384():
			algs = []string{"ES384"}
		case elliptic.P521():
			algs = []string{"ES512"}
		default:
			return nil, errors.New("unsupported curve")
		}
	case ed25519.PublicKey:
		algs = ed25519Algs
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	if a := string(m.ALG); a != "" {
		// The IdP pinned the key to one algorithm; honour it.
		if !slices.Contains(algs, a) {
			return nil, fmt.Errorf("alg %q does not fit the key", a)
		}
		algs = []string{a}
	}
	return &verKey{kid: m.KID, pub: jwk.Key(), algs: algs}, nil
}

// fetchCall is one JWKS fetch that any number of callers can wait for.
type fetchCall struct {
	done chan struct{}
	err  error // read only after done is closed
}

// refreshLoop fetches the JWKS at start and then every interval. After a
// failure it retries sooner, backing off from 1s up to the interval, so a
// JWKS that was down at start-up is picked up quickly even with no traffic.
func (v *Verifier) refreshLoop() {
	defer v.wg.Done()
	backoff := time.Second
	for {
		c := v.startFetch(false)
		select {
		case <-c.done:
		case <-v.ctx.Done():
			return
		}
		wait := v.interval
		if c.err != nil {
			wait = min(backoff, v.interval)
			backoff = min(2*backoff, v.interval)
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-v.ctx.Done():
			t.Stop()
			return
		}
	}
}

// refreshUnknown is called when a token names a key we do not have. It
// joins a fetch in flight or, if the rate limit allows, starts one, and
// waits for it while ctx allows. It returns the key set to use, which is the
// current one when no fetch was allowed.
func (v *Verifier) refreshUnknown(ctx context.Context) *keySet {
	if v.jwksURL == "" {
		return v.keys.Load() // inline keys never change
	}
	v.mu.Lock()
	c := v.inflight
	if c == nil {
		if now := time.Now(); !v.lastDemand.IsZero() && now.Sub(v.lastDemand) < v.minGap {
			v.mu.Unlock()
			return v.keys.Load()
		}
		c = v.startFetchLocked(true)
	}
	v.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
	return v.keys.Load()
}

func (v *Verifier) startFetch(demand bool) *fetchCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inflight != nil {
		return v.inflight
	}
	return v.startFetchLocked(demand)
}

// startFetchLocked runs a fetch in the background rather than in the
// caller, so a request whose context ends does not abort a fetch others are
// waiting for. v.mu must be held.
func (v *Verifier) startFetchLocked(demand bool) *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	if err := v.ctx.Err(); err != nil {
		// Closed: fetch nothing, and keep wg.Add away from Close's Wait.
		c.err = err
		close(c.done)
		return c
	}
	if demand {
		v.lastDemand = time.Now()
	}
	v.inflight = c
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		c.err = v.fetch(v.ctx)
		v.mu.Lock()
		v.inflight = nil
		if demand {
			// Count the gap from the end too, so a slow or hanging JWKS
			// endpoint is not hit again the moment a fetch times out.
			v.lastDemand = time.Now()
		}
		v.mu.Unlock()
		close(c.done)
	}()
	return c
}

// fetch downloads the JWKS and installs it. On any failure the current keys
// stay in place: a JWKS outage must not log everybody out.
func (v *Verifier) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	err := v.fetchAndInstall(ctx)
	if v.onFetch != nil && v.ctx.Err() == nil {
		v.onFetch(err)
	}
	if err != nil && v.ctx.Err() == nil {
		v.log.WarnContext(ctx, "jwks fetch failed, keeping current keys",
			"url", v.logURL, "error", err)
	}
	return err
}

func (v *Verifier) fetchAndInstall(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSSize {
		return fmt.Errorf("jwks larger than %d bytes", maxJWKSSize)
	}
	prev := v.keys.Load()
	ks, skipped, err := parseJWKS(body, prev)
	for _, s := range skipped {
		v.log.WarnContext(ctx, "jwks key skipped", "url", v.logURL, "error", s)
	}
	if err != nil {
		return err
	}
	// Keep the old snapshot when nothing changed, so cached verdicts for
	// tokens without a kid (tied to the snapshot) survive routine refreshes.
	if !ks.sameKeys(prev) {
		v.keys.Store(ks)
		v.log.DebugContext(ctx, "jwks updated", "url", v.logURL, "keys", len(ks.all))
	}
	return nil
}

// Ready reports whether the verifier holds at least one key, so that it can
// accept tokens: an inline key set always does, a fetched one once its first
// download succeeded (and from then on, since an outage keeps the keys).
func (v *Verifier) Ready() bool {
	ks := v.keys.Load()
	return ks != nil && len(ks.all) > 0
}
