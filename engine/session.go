package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SessionKeySize is the length of the key that seals the session ids of
// multi-target backends (AES-256-GCM).
const SessionKeySize = 32

// sessionLifetime bounds a gateway-issued session id: after it the id is
// refused (404) and the client initializes again.
const sessionLifetime = 24 * time.Hour

// ParseSessionKey reads a 32-byte key given in hex or base64 (standard or
// URL alphabet, padded or not).
func ParseSessionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == SessionKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == SessionKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("session key must be %d bytes in hex or base64", SessionKeySize)
}

// fedSession is what a gateway-issued Mcp-Session-Id carries: the upstream
// session of each target, the negotiated protocol version and an expiry.
// It is sealed with AES-GCM, so any replica holding the key can serve it,
// a client can neither read the upstream ids nor forge or alter one.
type fedSession struct {
	Upstream map[string]upstreamSession `json:"u"` // by target name; a target missing here gets a session per request
	Version  string                     `json:"v"`
	Expires  int64                      `json:"e"` // unix seconds
}

// sessionCodec seals and opens session ids.
type sessionCodec struct {
	aead cipher.AEAD
	now  func() time.Time
}

var errBadSession = errors.New("unknown or expired session")

func newSessionCodec(key []byte) (*sessionCodec, error) {
	if key == nil {
		key = make([]byte, SessionKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	if len(key) != SessionKeySize {
		return nil, fmt.Errorf("session key must be %d bytes, got %d", SessionKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sessionCodec{aead: aead, now: time.Now}, nil
}

// seal returns the session id for s, bound to backend (as additional data:
// an id of one backend is refused by another).
func (c *sessionCodec) seal(backend string, s *fedSession) (string, error) {
	s.Expires = c.now().Add(sessionLifetime).Unix()
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, plain, []byte(backend))), nil
}

// open returns the session an id carries, or errBadSession when the id was
// not sealed with this key for this backend, was altered, or expired.
func (c *sessionCodec) open(backend, id string) (*fedSession, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return nil, errBadSession
	}
	ns := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:ns], raw[ns:], []byte(backend))
	if err != nil {
		return nil, errBadSession
	}
	var s fedSession
	if err := json.Unmarshal(plain, &s); err != nil || c.now().Unix() >= s.Expires {
		return nil, errBadSession
	}
	return &s, nil
}
