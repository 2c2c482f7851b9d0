package engine

import (
	"bytes"
	"testing"
)

// FuzzSessionOpen feeds arbitrary client session ids to the decoder: it
// never panics, and accepts an id only when it is one the gateway sealed
// (for that backend, with that key): a forged or altered id never opens.
func FuzzSessionOpen(f *testing.F) {
	c, err := newSessionCodec(bytes.Repeat([]byte{7}, SessionKeySize))
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := c.seal("ns/be", &fedSession{Upstream: map[string]upstreamSession{"a": {ID: "u1", Version: "2025-06-18"}}, Version: "2025-06-18"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "x", genuine, genuine[:len(genuine)-1], genuine + "A", "6f1d6c2e-5b3a-4c1e-9f7a-0c2b1e8d4a55", "====", "\x00\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		s, err := c.open("ns/be", id)
		if err != nil {
			if s != nil {
				t.Fatalf("open(%q) returned a session with an error", id)
			}
			return
		}
		if id != genuine {
			// Base64 admits several spellings of the same bytes only in
			// padding bits; the decoder must refuse everything else.
			t.Logf("accepted a different spelling of a sealed id: %q", id)
		}
		if s == nil || s.Upstream["a"].ID != "u1" {
			t.Fatalf("open(%q) accepted something the gateway never sealed: %+v", id, s)
		}
	})
}
