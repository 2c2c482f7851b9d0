package engine

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSessionSealOpen(t *testing.T) {
	c, err := newSessionCodec(bytes.Repeat([]byte{7}, SessionKeySize))
	require.NoError(t, err)
	in := &fedSession{Upstream: map[string]upstreamSession{"a": {ID: "upstream-secret-1", Version: "2025-06-18"}, "b": {}}, Version: "2025-06-18"}
	id, err := c.seal("ns/be", in)
	require.NoError(t, err)
	require.NotContains(t, id, "upstream-secret-1")
	raw, err := base64.RawURLEncoding.DecodeString(id)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "upstream-secret-1", "upstream ids must not be readable")

	out, err := c.open("ns/be", id)
	require.NoError(t, err)
	require.Equal(t, in.Upstream, out.Upstream)
	require.Equal(t, "2025-06-18", out.Version)

	// Two seals of the same session differ (random nonce).
	id2, err := c.seal("ns/be", in)
	require.NoError(t, err)
	require.NotEqual(t, id, id2)

	t.Run("refused", func(t *testing.T) {
		flipped := []byte(raw)
		flipped[len(flipped)/2] ^= 1
		other, err := newSessionCodec(bytes.Repeat([]byte{8}, SessionKeySize))
		require.NoError(t, err)
		for name, open := range map[string]func() (*fedSession, error){
			"tampered":      func() (*fedSession, error) { return c.open("ns/be", base64.RawURLEncoding.EncodeToString(flipped)) },
			"other backend": func() (*fedSession, error) { return c.open("ns/other", id) },
			"other key":     func() (*fedSession, error) { return other.open("ns/be", id) },
			"truncated":     func() (*fedSession, error) { return c.open("ns/be", id[:10]) },
			"not base64":    func() (*fedSession, error) { return c.open("ns/be", "!!!") },
			"empty":         func() (*fedSession, error) { return c.open("ns/be", "") },
		} {
			_, err := open()
			require.ErrorIs(t, err, errBadSession, name)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c.now = func() time.Time { return time.Now().Add(sessionLifetime + time.Minute) }
		defer func() { c.now = time.Now }()
		_, err := c.open("ns/be", id)
		require.ErrorIs(t, err, errBadSession)
	})
}

func TestParseSessionKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, SessionKeySize)
	for _, s := range []string{
		strings.Repeat("ab", SessionKeySize),
		base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		" " + strings.Repeat("ab", SessionKeySize) + "\n",
	} {
		got, err := ParseSessionKey(s)
		require.NoError(t, err, s)
		require.Equal(t, key, got)
	}
	for _, s := range []string{"", "abcd", strings.Repeat("ab", 16), base64.StdEncoding.EncodeToString(key[:16])} {
		_, err := ParseSessionKey(s)
		require.Error(t, err, s)
	}
	_, err := newSessionCodec(key[:16])
	require.Error(t, err)
}
