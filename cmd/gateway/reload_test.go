package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// A file caught mid-write is not activated: an in-place writer truncates
// first, and an empty policy file is a valid configuration without
// authentication. The window here (40 ms) is well inside one polling
// interval (200 ms), so only a settled file may be read; a watcher records
// every configuration that was ever active. A few rounds, since the poll
// falls into the window only some of the time.
func TestReloadWaitsForWritesToSettle(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"00-gateway.yaml", "10-backend.yaml", "20-route.yaml", "30-mcp-auth-policy.yaml", "40-services.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy := filepath.Join(dir, "30-mcp-auth-policy.yaml")
	text, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
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
	go reload(ctx, slog.New(slog.DiscardHandler), gw, flags, nil, 200*time.Millisecond, seen)

	var unauthenticated atomic.Bool
	go func() {
		for ctx.Err() == nil {
			if len(gw.Config().Authn) == 0 {
				unauthenticated.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	mode := "Strict"
	for round := range 8 {
		next := "Permissive"
		if mode == "Permissive" {
			next = "Strict"
		}
		if err := os.WriteFile(policy, nil, 0o644); err != nil { // truncated, mid-write
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
		if err := os.WriteFile(policy, []byte(strings.Replace(string(text), "mode: Strict", "mode: "+next, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for gw.Config().Authn["agentgateway-system/mcp-oauth-auth"] == nil || gw.Config().Authn["agentgateway-system/mcp-oauth-auth"].Mode != next {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: mode %s never became active", round, next)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if unauthenticated.Load() {
			t.Fatalf("round %d: the truncated policy file was activated: the gateway ran without authentication", round)
		}
		mode = next
	}
}
