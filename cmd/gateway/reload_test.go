package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/engine"
)

// A valid change of the files is activated; an invalid one is logged and
// the running configuration keeps serving; a later valid change is taken.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadDir(filepath.Join("..", "..", "examples", "quickstart"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range src {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flags := &sourceFlags{files: listFlag{dir}}
	seen := fingerprint(flags.files)
	b, err := flags.compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := engine.New(engine.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := gw.Activate(ctx, b); err != nil {
		t.Fatal(err)
	}
	first := gw.Revision()
	go reload(ctx, slog.New(slog.DiscardHandler), gw, flags, nil, 20*time.Millisecond, seen)

	policy := filepath.Join(dir, "30-mcp-auth-policy.yaml")
	text, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(policy, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	write(strings.Replace(string(text), "mode: Strict", "mode: Permissive", 1))
	waitFor("the valid change to be active", func() bool { return gw.Revision() != first })
	second := gw.Revision()
	if got := gw.Config().Authn["agentgateway-system/mcp-oauth-auth"].Mode; got != "Permissive" {
		t.Fatalf("mode = %q after reload, want Permissive", got)
	}

	write(strings.Replace(string(text), "mode: Strict", "mode: Strictt", 1))
	time.Sleep(300 * time.Millisecond) // many polling rounds
	if gw.Revision() != second {
		t.Fatalf("an invalid change replaced the running configuration")
	}

	write(string(text))
	waitFor("the restored file to be active", func() bool { return gw.Revision() == first })
}
