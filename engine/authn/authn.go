// Package authn verifies OAuth bearer JWTs against an identity provider's JWKS.
//
// A Verifier serves one authentication policy (ir.Authn). It keeps the
// provider's signing keys in an immutable snapshot that is swapped atomically
// when the JWKS is re-fetched, so the request path reads keys without locks,
// and it remembers tokens it has already verified, so a client that repeats
// its token pays for a SHA-256 and a map lookup instead of a signature check
// and a JSON decode. The verdict is a Result whose claims are already an OPA
// value, ready to be placed in the policy input without another conversion.
//
// Nothing here decides policy: a Result only says whether the token is
// authentic and current; the Rego library decides what that means.
package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/ir"
)

// ErrInvalidConfig is returned by New when the authentication policy cannot
// be used to verify tokens.
var ErrInvalidConfig = errors.New("invalid authn config")

// MaxTokenSize bounds the tokens we are willing to parse. Real access tokens
// are a few KiB at most; anything larger is refused before any base64 or
// JSON work, so an attacker cannot make us decode megabytes per request.
const MaxTokenSize = 16 << 10

// Reasons a present token is not valid. They are stable, short and safe to
// show a client: they never include the token, a claim value or a key.
const (
	ReasonMalformed       = "malformed token"
	ReasonUnsupportedAlg  = "unsupported algorithm"
	ReasonUnknownKey      = "unknown signing key"
	ReasonJWKSUnavailable = "jwks unavailable"
	ReasonSignature       = "signature is invalid"
	ReasonExpired         = "token is expired"
	ReasonNotYetValid     = "token is not valid yet"
	ReasonIssuedInFuture  = "token used before issued"
	ReasonMissingExpiry   = "token has no expiry"
	ReasonIssuer          = "invalid issuer"
	ReasonAudience        = "invalid audience"
	ReasonClaims          = "invalid claims"
)

// Defaults for the zero values of ir.Authn and Options.
const (
	DefaultCacheSeconds     = 300
	DefaultCacheSize        = 10000
	DefaultLeeway           = 30 * time.Second
	DefaultRefreshRateLimit = 10 * time.Second
	DefaultHTTPTimeout      = 10 * time.Second
)

// Result is the verdict on one bearer token.
type Result struct {
	Present bool   // a bearer token was supplied
	Valid   bool   // signature, alg, exp/nbf/iat, iss and aud all check out
	Error   string // one of the Reason constants when Present && !Valid
	// Claims is the token's claims as an ast.Object when Valid, else nil. It
	// is built once per verification and shared by every cache hit, so
	// callers must treat it as immutable.
	Claims ast.Value
	// Header is the JOSE header's alg, kid and typ as an ast.Object whenever
	// the token could be decoded, even if it is not valid, so policy and logs
	// can say which key or algorithm was refused.
	Header  ast.Value
	Subject string    // "sub" when Valid
	Expiry  time.Time // "exp" when Valid
}

// Options tune a Verifier. The zero value is ready for production use.
type Options struct {
	// HTTPClient fetches the JWKS. nil: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives JWKS fetch failures (warn) and key set changes
	// (debug). nil: discard.
	Logger *slog.Logger
	// Now is the clock for exp, nbf and iat, both when verifying and on
	// every cache hit. nil: time.Now. It does not drive JWKS refresh timing,
	// which always uses the real clock.
	Now func() time.Time
	// CacheSize bounds the verified-token cache. 0: 10000; negative
	// disables the cache.
	CacheSize int
	// Leeway is the clock skew tolerated on exp, nbf and iat. 0: 30s, a
	// common IdP default that absorbs NTP drift without keeping an expired
	// token alive for long. Negative: no leeway.
	Leeway time.Duration
	// RefreshRateLimit is the minimum interval between JWKS fetches
	// triggered by tokens with an unknown kid. 0 or negative: 10s, short
	// enough that a key rotated in at the IdP is picked up almost at once,
	// long enough that a flood of forged kids costs the IdP at most one
	// request per interval.
	RefreshRateLimit time.Duration
	// OnFetch, when set, is called after every JWKS download attempt with
	// its error (nil on success), for metrics.
	OnFetch func(err error)
}

// Verifier checks bearer tokens for one authentication policy. It is safe
// for concurrent use.
type Verifier struct {
	key      string
	jwksURL  string // "" for an inline JWKS, which never changes
	logURL   string // jwksURL with any password redacted
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	leeway   time.Duration
	interval time.Duration
	minGap   time.Duration
	parser   *jwt.Parser
	cache    *tokenCache
	onFetch  func(error)

	// keys is the current key set. It is replaced, never modified, so
	// the request path reads it with one atomic load.
	keys atomic.Pointer[keySet]

	// mu guards the fetch bookkeeping below. Requests take it only when a
	// token names a key we do not have, never for a known key or cache hit.
	mu         sync.Mutex
	inflight   *fetchCall
	lastDemand time.Time // when the last unknown-kid fetch started or ended

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a verifier for one authentication policy. It never waits for
// the network: a remote JWKS is fetched in the background, so an IdP outage
// at start-up does not stop the gateway from starting. Until keys arrive,
// tokens are refused with ReasonJWKSUnavailable (a request with a token waits
// for the first fetch while its context allows).
//
// ctx bounds the verifier's lifetime: cancelling it stops background
// refreshes, as Close does.
func New(ctx context.Context, cfg *ir.Authn, opts Options) (*Verifier, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil policy", ErrInvalidConfig)
	}
	ks, errs := validate(cfg)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, cfg.Key, errors.Join(errs...))
	}

	v := &Verifier{
		key:      cfg.Key,
		jwksURL:  cfg.JWKSURL,
		client:   opts.HTTPClient,
		log:      opts.Logger,
		now:      opts.Now,
		leeway:   opts.Leeway,
		interval: time.Duration(cfg.CacheSeconds) * time.Second,
		minGap:   opts.RefreshRateLimit,
		onFetch:  opts.OnFetch,
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.log = v.log.With("authn", cfg.Key)
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.interval == 0 {
		v.interval = DefaultCacheSeconds * time.Second
	}
	if v.minGap <= 0 {
		v.minGap = DefaultRefreshRateLimit
	}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	v.cache = newTokenCache(size)

	popts := []jwt.ParserOption{
		jwt.WithJSONNumber(), // keeps exp and other large integers exact
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audiences) > 0 {
		// Any one of the configured audiences suffices (RFC 7519 4.1.3).
		popts = append(popts, jwt.WithAudience(cfg.Audiences...))
	}
	v.parser = jwt.NewParser(popts...)

	v.ctx, v.cancel = context.WithCancel(ctx)
	if ks != nil {
		v.keys.Store(ks)
		return v, nil
	}
	u, _ := url.Parse(cfg.JWKSURL) // validated above
	v.logURL = u.Redacted()
	v.keys.Store(&keySet{})
	v.wg.Add(1)
	go v.refreshLoop()
	return v, nil
}

// validate reports every problem with cfg at once. For an inline JWKS it
// also returns the parsed key set.
func validate(cfg *ir.Authn) (*keySet, []error) {
	var errs []error
	var ks *keySet
	switch {
	case cfg.JWKSURL != "" && cfg.JWKSInline != "":
		errs = append(errs, errors.New("jwks_url and jwks_inline are mutually exclusive"))
	case cfg.JWKSURL != "":
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("jwks_url: must be an absolute http(s) URL"))
		}
	case cfg.JWKSInline != "":
		var err error
		var skipped []error
		ks, skipped, err = parseJWKS([]byte(cfg.JWKSInline), nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("jwks_inline: %w", err))
		} else if len(skipped) > 0 {
			// An inline set is under the operator's control: a key we
			// cannot use is a mistake worth failing on, not skipping.
			errs = append(errs, fmt.Errorf("jwks_inline: %w", errors.Join(skipped...)))
		}
	default:
		errs = append(errs, errors.New("one of jwks_url or jwks_inline is required"))
	}
	if cfg.CacheSeconds < 0 {
		errs = append(errs, errors.New("cache_seconds: must not be negative"))
	}
	return ks, errs
}

// Close stops background JWKS refreshes and waits for them to end.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		// Cancel under mu so no fetch can be started (wg.Add) once Wait runs.
		v.mu.Lock()
		v.cancel()
		v.mu.Unlock()
		v.wg.Wait()
	})
}

// Verify checks a raw compact JWT (without the "Bearer " prefix). An empty
// token yields a Result with Present false. ctx only bounds how long a token
// with an unknown kid may wait for a JWKS refresh.
func (v *Verifier) Verify(ctx context.Context, token string) Result {
	if token == "" {
		return Result{}
	}
	if len(token) > MaxTokenSize {
		return Result{Present: true, Error: ReasonMalformed}
	}
	// Hash the string's bytes in place: []byte(token) would copy the token,
	// the only allocation left on a cache hit. Sum256 does not keep or
	// modify its input.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	now := v.now()
	cur := v.keys.Load()
	if r, ok := v.cache.get(&sum, now, cur); ok {
		return r
	}
	r, e := v.verify(ctx, token)
	if r.Valid {
		e.until = r.Expiry.Add(v.leeway)
		v.cache.put(&sum, e, now, v.keys.Load())
	}
	return r
}

// verify does the full check; the returned entry describes a valid result
// for the cache.
func (v *Verifier) verify(ctx context.Context, token string) (Result, cacheEntry) {
	var e cacheEntry
	keyfunc := func(t *jwt.Token) (any, error) {
		k, ks, err := v.keyFor(ctx, t)
		e.key, e.ks = k, ks
		if err != nil {
			return nil, err
		}
		if k == nil {
			// No kid: try every key that can verify this algorithm.
			return ks.candidates(t.Method.Alg()), nil
		}
		return k.pub, nil
	}
	t, err := v.parser.Parse(token, keyfunc)

	r := Result{Present: true}
	if t != nil && t.Header != nil {
		r.Header = headerValue(t.Header)
	}
	if err != nil {
		r.Error = v.reason(t, err)
		return r, e
	}
	claims, ok := t.Claims.(jwt.MapClaims)
	if !ok {
		r.Error = ReasonClaims
		return r, e
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		r.Error = ReasonMissingExpiry // unreachable: the parser requires exp
		return r, e
	}
	cv, err := ast.InterfaceToValue(map[string]any(claims))
	if err != nil {
		r.Error = ReasonClaims
		return r, e
	}
	r.Valid = true
	r.Claims = cv
	r.Subject, _ = claims["sub"].(string)
	r.Expiry = exp.Time
	e.res = r
	return r, e
}

// Sentinel keyfunc errors, mapped to reasons by reason.
var (
	errUnsupportedAlg  = errors.New("unsupported algorithm")
	errUnknownKey      = errors.New("unknown signing key")
	errJWKSUnavailable = errors.New("jwks unavailable")
)

// keyFor picks the key for a parsed but unverified token. It returns a nil
// key (and no error) when the token has no kid and there are candidates.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (*verKey, *keySet, error) {
	alg := t.Method.Alg()
	if !asymmetric(alg) {
		// Refuses "none" and HS*: with a public JWKS, an HMAC "secret"
		// would be public key material anyone can sign with.
		return nil, nil, errUnsupportedAlg
	}
	ks := v.keys.Load()
	rawKid, hasKid := t.Header["kid"]
	if !hasKid {
		if !ks.canVerify(alg) {
			ks = v.refreshUnknown(ctx)
		}
		if !ks.canVerify(alg) {
			return nil, ks, ks.missing()
		}
		return nil, ks, nil
	}
	kid, ok := rawKid.(string)
	if !ok {
		return nil, ks, errUnknownKey
	}
	k := ks.byKID[kid]
	if k == nil {
		ks = v.refreshUnknown(ctx)
		k = ks.byKID[kid]
	}
	if k == nil {
		return nil, ks, ks.missing()
	}
	if !k.allows(alg) {
		return nil, ks, errUnsupportedAlg
	}
	return k, ks, nil
}

// reason maps a parser error to a client-safe reason. Claim errors are
// checked in order of usefulness to the client: an expired token is
// reported as expired even if it has other faults.
func (v *Verifier) reason(t *jwt.Token, err error) string {
	switch {
	case errors.Is(err, errUnsupportedAlg):
		return ReasonUnsupportedAlg
	case errors.Is(err, errJWKSUnavailable):
		return ReasonJWKSUnavailable
	case errors.Is(err, errUnknownKey):
		return ReasonUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The parser could not resolve alg to a signing method.
		if t != nil && t.Method == nil {
			return ReasonUnsupportedAlg
		}
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The parser does not say which claim; ask the claims.
		if c, ok := t.Claims.(jwt.MapClaims); ok {
			switch {
			case c["exp"] == nil:
				return ReasonMissingExpiry
			case c["iss"] == nil:
				return ReasonIssuer
			}
		}
		return ReasonAudience
	}
	return ReasonClaims
}

// headerValue keeps only the header fields policy may reasonably use.
func headerValue(h map[string]any) ast.Value {
	obj := ast.NewObject()
	for _, k := range [...]string{"alg", "kid", "typ"} {
		x, ok := h[k]
		if !ok {
			continue
		}
		val, err := ast.InterfaceToValue(x)
		if err != nil {
			continue
		}
		obj.Insert(ast.InternedTerm(k), ast.NewTerm(val))
	}
	return obj
}

// Bearer extracts the token from an Authorization header value. The scheme
// is case-insensitive (RFC 9110 11.1) and is followed by one or more spaces
// and exactly one token. Any other shape, including an empty token, reports
// no bearer token.
func Bearer(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}
