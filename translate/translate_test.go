package translate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden is what a case produces: the IR and the error messages.
type golden struct {
	Config  any               `json:"config"`
	Modules map[string]string `json:"modules,omitempty"`
	Errors  []string          `json:"errors"`
}

// TestGolden translates every testdata/<case>.in.yaml and compares the IR and
// the errors with testdata/<case>.out.json. A line "# resolve: FROM=TO" in
// the input adds a --resolve entry; a line "# allow-stdio" admits stdio
// targets, as the standalone gateway does.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res := &translate.Resources{Sources: map[string]string{}, Resolve: map[string]string{}}
			for _, line := range strings.Split(string(src), "\n") {
				if strings.TrimSpace(line) == "# allow-stdio" {
					res.AllowStdio = true
				}
				if r, ok := strings.CutPrefix(line, "# resolve: "); ok {
					from, to, _ := strings.Cut(strings.TrimSpace(r), "=")
					res.Resolve[from] = to
				}
			}
			var msgs []string
			for _, e := range load.Decode(filepath.Base(in), src, res) {
				msgs = append(msgs, e.Error())
			}
			out, err := translate.Translate(res)
			msgs = append(msgs, splitJoined(err)...)
			sort.Strings(msgs)
			got, err := json.MarshalIndent(golden{Config: out.Config, Modules: out.Modules, Errors: nonNil(msgs)}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".out.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./translate -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation (run go test ./translate -update and review the diff):\n%s", golden, diff(string(want), string(got)))
			}
		})
	}
}

func splitJoined(err error) []string {
	if err == nil {
		return nil
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// diff is a small line diff, enough to read a golden mismatch.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  - " + wl + "\n  + " + gl + "\n")
		}
	}
	return b.String()
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + jsonInt(i)) }

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }
