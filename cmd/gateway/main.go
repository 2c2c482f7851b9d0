// Command gateway is mcpgate's entry point. It only wires packages together:
// load (files) → translate (IR + bundle) → engine (request path).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/engine"
	"github.com/mcpgate/mcpgate/internal/dataplane"
	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `mcpgate: authentication, tool authorization and rate limits for MCP servers,
decided by an embedded OPA/Rego policy.

Usage:
  gateway run -f PATH [-f PATH...] [flags]     serve the configuration in PATH (YAML files or directories)
  gateway run --bundle bundle.tar.gz [flags]   serve a compiled bundle
  gateway bundle -f PATH [-f PATH...] -o FILE  compile the configuration into an OPA bundle
  gateway test -f PATH [--coverage] TESTS...   run Rego tests (*_test.rego) against the compiled configuration
  gateway version                              print the version

Run 'gateway COMMAND -h' for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "controller":
		err = errors.New("the Kubernetes controller is its own binary, gateway-controller: it links client-go, which the data plane does not need")
	case "bundle":
		err = buildBundle(os.Args[2:], os.Stdout)
	case "test":
		err = testPolicies(os.Args[2:], os.Stdout)
	case "version", "--version", "-version":
		fmt.Println("mcpgate", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "gateway: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gateway:", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		}
		os.Exit(1)
	}
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// common flags of run and bundle.
type sourceFlags struct {
	files   listFlag
	resolve listFlag
}

func (s *sourceFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.files, "f", "YAML or Rego file, or a directory of *.yaml, *.yml and *.rego files (repeatable)")
	fs.Var(&s.resolve, "resolve", "HOST:PORT=ADDR:PORT: dial ADDR:PORT for a Service (NAME.NAMESPACE:PORT) or a host (repeatable)")
}

// compile loads, translates and bundles the configuration.
func (s *sourceFlags) compile(override func(*ir.Config) error) (*bundle.Bundle, error) {
	if len(s.files) == 0 {
		return nil, errors.New("no configuration: pass -f PATH")
	}
	resolve := map[string]string{}
	for _, r := range s.resolve {
		from, to, ok := strings.Cut(r, "=")
		if !ok || !hasPort(from) || !hasPort(to) {
			return nil, fmt.Errorf("--resolve %q: want HOST:PORT=ADDR:PORT", r)
		}
		resolve[from] = to
	}
	loaded, err := load.Files(s.files)
	if err != nil {
		return nil, err
	}
	loaded.Resources.Resolve = resolve
	loaded.Resources.AllowStdio = true // standalone: stdio targets are the operator's own commands
	res, err := translate.Translate(loaded.Resources)
	if err != nil {
		return nil, err
	}
	if override != nil {
		if err := override(res.Config); err != nil {
			return nil, err
		}
	}
	return translate.Bundle(res, nil)
}

func hasPort(hp string) bool {
	_, p, err := net.SplitHostPort(hp)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func buildBundle(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	var src sourceFlags
	src.register(fs)
	out := fs.String("o", "bundle.tar.gz", "output file ('-' for stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := src.compile(nil)
	if err != nil {
		return err
	}
	if *out == "-" {
		return b.Write(stdout)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := b.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (revision %s)\n", *out, b.Revision)
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var src sourceFlags
	src.register(fs)
	var dp dataplane.Flags
	dp.Register(fs)
	dp.AllowStdio = true // standalone: stdio targets are the operator's own commands
	bundlePath := fs.String("bundle", "", "serve a bundle written by 'gateway bundle' instead of YAML")
	port := fs.Int("port", 0, "override the port of the Gateway's listener (only with a single listener)")
	watch := fs.Duration("watch", time.Second, "how often to check the -f files for changes (0: never); a valid change is activated, an invalid one logged while the running configuration keeps serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := dp.Logger()
	if err != nil {
		return err
	}

	override := func(cfg *ir.Config) error {
		if *port == 0 {
			return nil
		}
		if len(cfg.Listeners) != 1 {
			return fmt.Errorf("--port needs exactly one listener, the configuration has %d", len(cfg.Listeners))
		}
		cfg.Listeners[0].Port = *port
		return nil
	}
	var b *bundle.Bundle
	seen := fingerprint(src.files) // before reading: a change made meanwhile is not missed
	if *bundlePath != "" {
		if len(src.files) > 0 {
			return errors.New("pass either -f or --bundle, not both")
		}
		b, err = readBundle(*bundlePath)
		if err == nil {
			err = override(b.Config)
		}
	} else {
		b, err = src.compile(override)
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	gw, closeGW, err := dp.Gateway(ctx, log, version)
	if err != nil {
		return err
	}
	defer closeGW()
	if err := gw.Activate(ctx, b); err != nil {
		return err
	}
	ls := dataplane.NewListeners(gw, *dp.Bind, log, *dp.HeaderTimeout, *dp.IdleTimeout)
	admin, err := dp.Obs.StartAdmin(gw, log, ls.Errc, version, nil)
	if err != nil {
		return err
	}
	if err := ls.Sync(*dp.Shutdown); err != nil {
		ls.Shutdown(context.Background())
		return err
	}
	if *watch > 0 && *bundlePath == "" {
		go reload(ctx, log, gw, &src, override, *watch, seen)
	}
	select {
	case <-ctx.Done():
	case err := <-ls.Errc:
		return err
	}
	log.Info("shutting down", "timeout", dp.Shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), *dp.Shutdown)
	defer cancel()
	ls.Shutdown(sctx)
	if admin != nil {
		_ = admin.Shutdown(sctx)
	}
	return nil
}

func readBundle(path string) (*bundle.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bundle.Read(f)
}

// reload polls the configuration files and activates each valid change once
// the files have stayed the same for one interval. A change that does not
// load, translate or compile is logged and the running configuration keeps
// serving. Listener ports are fixed at start: a change
// of ports is refused until restart.
// last is the fingerprint taken before the running configuration was read.
func reload(ctx context.Context, log *slog.Logger, gw *engine.Gateway, src *sourceFlags, override func(*ir.Config) error, every time.Duration, last string) {
	t := time.NewTicker(every)
	defer t.Stop()
	pending := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := fingerprint(src.files)
		if fp == last {
			pending = ""
			continue
		}
		if fp != pending {
			// Changed since the last look: the files may be mid-write (an
			// editor or a copy that truncates first would expose an empty
			// policy file, a valid configuration without authentication).
			// Read them once they have stayed the same for one interval.
			pending = fp
			continue
		}
		last, pending = fp, ""
		b, err := src.compile(override)
		if err != nil {
			log.Error("configuration change rejected; the previous configuration keeps serving", "error", err.Error())
			continue
		}
		if ports := portsOf(b.Config); fmt.Sprint(ports) != fmt.Sprint(gw.Ports()) {
			log.Error("configuration change rejected: listener ports changed; restart the gateway to change them", "ports", ports, "serving", gw.Ports())
			continue
		}
		if b.Revision == gw.Revision() {
			continue
		}
		if err := gw.Activate(ctx, b); err != nil {
			log.Error("configuration change rejected; the previous configuration keeps serving", "error", err.Error())
		}
	}
}

// fingerprint summarises the names, sizes and modification times of the
// configuration files, to notice changes without reading them.
func fingerprint(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(&b, "%s:err;", path)
				return nil
			}
			if d.IsDir() && path != p {
				return filepath.SkipDir
			}
			if info, err := d.Info(); err == nil && !d.IsDir() {
				fmt.Fprintf(&b, "%s:%d:%d;", path, info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return b.String()
}

func portsOf(cfg *ir.Config) []int {
	var out []int
	for _, l := range cfg.Listeners {
		out = append(out, l.Port)
	}
	sort.Ints(out)
	return out
}
