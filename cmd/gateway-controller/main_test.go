package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// The bundle endpoint follows OPA's bundle protocol: 503 before the first
// bundle, then the bundle with its revision as ETag, 304 for If-None-Match
// of the current revision, the new bundle after a change.
func TestBundleServer(t *testing.T) {
	s := &bundleServer{}
	get := func(etag string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, BundlePath, nil)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	if w := get(""); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("before any bundle: %d", w.Code)
	}
	loaded, err := load.Files([]string{filepath.Join("..", "..", "examples", "quickstart")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := translate.Translate(loaded.Resources)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := translate.Bundle(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.set(b1)
	w := get("")
	if w.Code != http.StatusOK || w.Header().Get("ETag") != `"`+b1.Revision+`"` {
		t.Fatalf("status %d ETag %q, want 200 %q", w.Code, w.Header().Get("ETag"), b1.Revision)
	}
	got, err := bundle.Read(w.Body)
	if err != nil || got.Revision != b1.Revision {
		t.Fatalf("served bundle: %v, revision %v", err, got)
	}
	if w := get(`"` + b1.Revision + `"`); w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match current: %d", w.Code)
	}
	if w := get(`"stale"`); w.Code != http.StatusOK {
		t.Fatalf("If-None-Match stale: %d", w.Code)
	}
}
