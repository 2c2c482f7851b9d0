package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// errTestsFailed makes the command exit 1 after printing the results.
var errTestsFailed = errors.New("policy tests failed")

// testPolicies compiles the configuration exactly as `run` does and runs the
// user's Rego tests against it, in-process: the same as
// `gateway bundle -o b.tar.gz && opa test b.tar.gz TESTS...`.
func testPolicies(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var src sourceFlags
	src.register(fs)
	coverage := fs.Bool("coverage", false, "report the coverage of the bundle's modules")
	verbose := fs.Bool("v", false, "list every test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := src.compile(nil)
	if err != nil {
		return err
	}
	modules := map[string]*ast.Module{}
	bundleFiles := map[string]*ast.Module{}
	for p, text := range b.Modules {
		m, err := ast.ParseModuleWithOpts(p, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		modules[p], bundleFiles[p] = m, m
	}
	tests, err := testFiles(fs.Args())
	if err != nil {
		return err
	}
	if len(tests) == 0 {
		return errors.New("no test files: pass files or directories holding *_test.rego")
	}
	for _, f := range tests {
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(f, string(text), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		modules[f] = m
	}
	data, err := b.Data()
	if err != nil {
		return err
	}
	runner := tester.NewRunner().SetModules(modules).SetStore(inmem.NewFromObject(data))
	var cov *cover.Cover
	if *coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(context.Background(), nil)
	if err != nil {
		return err
	}
	pass, fail := 0, 0
	for r := range ch {
		switch {
		case r.Error != nil:
			fail++
			fmt.Fprintf(stdout, "ERROR %s.%s: %v\n", r.Package, r.Name, r.Error)
		case r.Fail:
			fail++
			fmt.Fprintf(stdout, "FAIL  %s.%s (%s)\n", r.Package, r.Name, r.Location)
		case r.Skip:
		default:
			pass++
			if *verbose {
				fmt.Fprintf(stdout, "PASS  %s.%s\n", r.Package, r.Name)
			}
		}
	}
	if cov != nil {
		report := cov.Report(bundleFiles)
		names := make([]string, 0, len(report.Files))
		for f := range report.Files {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			fmt.Fprintf(stdout, "coverage %-50s %5.1f%%\n", f, report.Files[f].Coverage)
		}
		fmt.Fprintf(stdout, "coverage total %.1f%%\n", report.Coverage)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", pass, fail)
	if fail > 0 {
		return errTestsFailed
	}
	return nil
}

// testFiles expands files and directories (recursively) into *_test.rego files.
func testFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, "_test.rego") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
