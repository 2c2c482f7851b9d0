package bundle_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/load"
	mcprego "github.com/mcpgate/mcpgate/rego"
	"github.com/mcpgate/mcpgate/translate"
)

// quickstart is the walkthrough's configuration translated to the IR.
func quickstart(t *testing.T) *ir.Config {
	t.Helper()
	res, err := load.Files([]string{filepath.Join("..", "examples", "quickstart")})
	require.NoError(t, err)
	out, err := translate.Translate(res.Resources)
	require.NoError(t, err)
	return out.Config
}

func userModule() map[string]string {
	m := mcprego.Modules()
	m["mcpgate/user/team.rego"] = "package mcpgate.user.team\n\nallowed_groups := {\"mcp-users\"}\n"
	return m
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestRoundTrip(t *testing.T) {
	cfg := quickstart(t)
	modules := userModule()
	b, err := bundle.New(cfg, modules)
	require.NoError(t, err)
	require.NotEmpty(t, b.Revision)

	var buf bytes.Buffer
	require.NoError(t, b.Write(&buf))
	got, err := bundle.Read(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)

	assert.Equal(t, b.Revision, got.Revision, "revision")
	assert.Equal(t, keys(modules), keys(got.Modules), "module paths")
	for p, text := range modules {
		if g, ok := got.Modules[p]; ok && g != text {
			t.Errorf("module %s: got %d bytes of text, want the %d bytes written", p, len(g), len(text))
		}
	}
	assert.Equal(t, cfg, got.Config, "config")

	// What was read is the same bundle: rebuilding it gives the same
	// revision, and writing it again gives the same bytes.
	again, err := bundle.New(got.Config, got.Modules)
	require.NoError(t, err)
	assert.Equal(t, b.Revision, again.Revision, "revision of the re-read content")
	var buf2 bytes.Buffer
	require.NoError(t, got.Write(&buf2))
	got2, err := bundle.Read(&buf2)
	require.NoError(t, err)
	assert.Equal(t, keys(got.Modules), keys(got2.Modules))
	assert.Equal(t, got.Config, got2.Config)
}

// The tarball is an ordinary OPA bundle: manifest with revision, roots and
// rego_version 1, the modules at their paths, the IR under mcpgate.config.
func TestWriteLayout(t *testing.T) {
	cfg := quickstart(t)
	b, err := bundle.New(cfg, userModule())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, b.Write(&buf))

	ob, err := opabundle.NewReader(&buf).Read()
	require.NoError(t, err)
	assert.Equal(t, b.Revision, ob.Manifest.Revision)
	require.NotNil(t, ob.Manifest.Roots)
	assert.Equal(t, []string{bundle.Root}, *ob.Manifest.Roots)
	require.NotNil(t, ob.Manifest.RegoVersion)
	assert.Equal(t, 1, *ob.Manifest.RegoVersion)
	var paths []string
	for _, m := range ob.Modules {
		paths = append(paths, strings.TrimPrefix(m.Path, "/"))
	}
	want := []string{"mcpgate/user/team.rego"}
	for p := range mcprego.Modules() {
		want = append(want, p) // the whole library, whatever files it has
	}
	assert.ElementsMatch(t, want, paths)
	assert.Contains(t, paths, "mcpgate/decision.rego")
	root, ok := ob.Data[bundle.Root].(map[string]any)
	require.True(t, ok, "got data %v, want a %s object", ob.Data, bundle.Root)
	conf, ok := root["config"].(map[string]any)
	require.True(t, ok, "got %v, want data.mcpgate.config", root)
	assert.Equal(t, ir.Version, conf["version"])
}

func TestRevision(t *testing.T) {
	cfg := quickstart(t)
	a, err := bundle.New(cfg, userModule())
	require.NoError(t, err)
	b, err := bundle.New(quickstart(t), userModule())
	require.NoError(t, err)
	assert.Equal(t, a.Revision, b.Revision, "same input, same revision")

	// Any change to the content changes the revision.
	changedModule := userModule()
	changedModule["mcpgate/user/team.rego"] += "# changed\n"
	c, err := bundle.New(cfg, changedModule)
	require.NoError(t, err)
	assert.NotEqual(t, a.Revision, c.Revision, "module text changed")

	renamed := userModule()
	renamed["mcpgate/user/other.rego"] = renamed["mcpgate/user/team.rego"]
	delete(renamed, "mcpgate/user/team.rego")
	d, err := bundle.New(cfg, renamed)
	require.NoError(t, err)
	assert.NotEqual(t, a.Revision, d.Revision, "module path changed")

	cfg2 := quickstart(t)
	for _, an := range cfg2.Authn {
		an.Mode = "Optional"
	}
	e, err := bundle.New(cfg2, userModule())
	require.NoError(t, err)
	assert.NotEqual(t, a.Revision, e.Revision, "config changed")

	// Moving text from one module's end to the next module's start must
	// change the revision too (no ambiguous concatenation).
	x1, err := bundle.New(cfg, map[string]string{"a.rego": "package a\n\np := 1\n# x", "b.rego": "package b\n"})
	require.NoError(t, err)
	x2, err := bundle.New(cfg, map[string]string{"a.rego": "package a\n\np := 1\n", "b.rego": "# xpackage b\n"})
	if err == nil {
		assert.NotEqual(t, x1.Revision, x2.Revision)
	}
}

func TestNewRejectsBadModules(t *testing.T) {
	cfg := quickstart(t)
	tests := []struct {
		name    string
		modules map[string]string
		want    []string // substrings of the error
	}{
		{
			name:    "parse error",
			modules: map[string]string{"mcpgate/user/bad.rego": "package mcpgate.user.bad\n\np := := 1\n\nq := 2\n"},
			want:    []string{"mcpgate/user/bad.rego:3", "rego_parse_error"},
		},
		{
			name:    "unsafe variable",
			modules: map[string]string{"mcpgate/user/bad.rego": "package mcpgate.user.bad\n\nimport rego.v1\n\np if {\n\tx == 1\n}\n"},
			want:    []string{"mcpgate/user/bad.rego:6", "unsafe"},
		},
		{
			name:    "undefined function",
			modules: map[string]string{"mcpgate/user/bad.rego": "package mcpgate.user.bad\n\np := no_such_function(1)\n"},
			want:    []string{"mcpgate/user/bad.rego:3", "no_such_function"},
		},
		{
			name:    "rego v0 syntax",
			modules: map[string]string{"mcpgate/user/old.rego": "package mcpgate.user.old\n\ndeny[msg] { msg := \"x\" }\n"},
			want:    []string{"mcpgate/user/old.rego:3"},
		},
		{
			name: "every broken file is named",
			modules: map[string]string{
				"mcpgate/user/one.rego": "package one\n\np := ]\n\nq := 1\n",
				"mcpgate/user/two.rego": "package two\n\n\nq := := 1\n",
			},
			want: []string{"mcpgate/user/one.rego:3", "mcpgate/user/two.rego:4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bundle.New(cfg, tt.modules)
			require.Error(t, err, "got bundle %v, want an error", b)
			assert.Nil(t, b)
			assert.ErrorIs(t, err, bundle.ErrBundle)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRead(t *testing.T) {
	write := func(t *testing.T, ob opabundle.Bundle) []byte {
		t.Helper()
		var buf bytes.Buffer
		require.NoError(t, opabundle.NewWriter(&buf).Write(ob))
		return buf.Bytes()
	}
	v1 := 1
	manifest := opabundle.Manifest{Revision: "r1", Roots: &[]string{bundle.Root}, RegoVersion: &v1}
	tests := []struct {
		name string
		in   func(t *testing.T) []byte
		want string
	}{
		{
			name: "no data at all",
			in: func(t *testing.T) []byte {
				return write(t, opabundle.Bundle{Manifest: manifest, Data: map[string]any{}})
			},
			want: "no data.mcpgate.config",
		},
		{
			name: "mcpgate data without config",
			in: func(t *testing.T) []byte {
				return write(t, opabundle.Bundle{Manifest: manifest, Data: map[string]any{"mcpgate": map[string]any{"other": 1}}})
			},
			want: "no data.mcpgate.config",
		},
		{
			name: "config of the wrong version",
			in: func(t *testing.T) []byte {
				return write(t, opabundle.Bundle{Manifest: manifest, Data: map[string]any{"mcpgate": map[string]any{"config": map[string]any{"version": "v0"}}}})
			},
			want: `config version "v0"`,
		},
		{
			name: "config of the wrong shape",
			in: func(t *testing.T) []byte {
				return write(t, opabundle.Bundle{Manifest: manifest, Data: map[string]any{"mcpgate": map[string]any{"config": map[string]any{"version": "v1", "routes": []any{1}}}}})
			},
			want: "data.mcpgate.config",
		},
		{
			name: "a module that does not compile",
			in: func(t *testing.T) []byte {
				return write(t, opabundle.Bundle{
					Manifest: manifest,
					Data:     map[string]any{"mcpgate": map[string]any{"config": map[string]any{"version": "v1"}}},
					Modules:  []opabundle.ModuleFile{{URL: "mcpgate/user/x.rego", Path: "mcpgate/user/x.rego", Raw: []byte("package mcpgate.user.x\n\np := q\n")}},
				})
			},
			want: "x.rego:3",
		},
		{
			name: "not a tarball",
			in:   func(*testing.T) []byte { return []byte("this is not a bundle") },
			want: "reading",
		},
		{
			name: "empty input",
			in:   func(*testing.T) []byte { return nil },
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bundle.Read(bytes.NewReader(tt.in(t)))
			require.Error(t, err, "got bundle %+v, want an error", b)
			assert.Nil(t, b)
			assert.True(t, errors.Is(err, bundle.ErrBundle), "got %v, want ErrBundle", err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// A bundle written by another OPA tool loads as long as it carries the
// config: a user's own data next to ours is fine.
func TestReadForeignBundle(t *testing.T) {
	cfg := quickstart(t)
	b, err := bundle.New(cfg, mcprego.Modules())
	require.NoError(t, err)
	data, err := b.Data()
	require.NoError(t, err)
	v1 := 1
	ob := opabundle.Bundle{
		Manifest: opabundle.Manifest{Revision: "built-elsewhere", Roots: &[]string{bundle.Root}, RegoVersion: &v1},
		Data:     data,
	}
	for p, text := range mcprego.Modules() {
		ob.Modules = append(ob.Modules, opabundle.ModuleFile{URL: p, Path: p, Raw: []byte(text)})
	}
	var buf bytes.Buffer
	require.NoError(t, opabundle.NewWriter(&buf).Write(ob))
	got, err := bundle.Read(&buf)
	require.NoError(t, err)
	assert.Equal(t, "built-elsewhere", got.Revision)
	assert.Equal(t, cfg, got.Config)
	assert.Len(t, got.Modules, len(mcprego.Modules()))
}

// Activation gets the compiler New built (the modules are compiled once);
// a bundle whose modules were replaced compiles them, errors included.
func TestCompileReusesNew(t *testing.T) {
	b, err := bundle.New(quickstart(t), userModule())
	require.NoError(t, err)
	first, err := b.Compile()
	require.NoError(t, err)
	again, err := b.Compile()
	require.NoError(t, err)
	require.NotSame(t, first, again, "a second caller gets a compiler of its own")

	c, err := bundle.New(quickstart(t), userModule())
	require.NoError(t, err)
	c.Modules = map[string]string{"mcpgate/user/x.rego": "package x\n\np := \n"}
	_, err = c.Compile()
	require.Error(t, err)
}
