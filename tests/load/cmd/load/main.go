// Command load runs mcpgate's load harness (package load) and writes the
// results as a markdown table.
//
//	go run ./tests/load/cmd/load -duration 10s -out tests/load/results/run.md
//
// Every flag has an environment variable the Makefile passes through.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/tests/load"
)

func main() {
	log.SetFlags(0)
	p := load.DefaultPlan()
	out := flag.String("out", env("LOAD_OUT", ""), "markdown file to write (default tests/load/results/<UTC time>.md) ($LOAD_OUT)")
	flag.DurationVar(&p.Duration, "duration", envDur("LOAD_DURATION", p.Duration), "length of each measurement ($LOAD_DURATION)")
	rates := flag.String("rates", env("LOAD_RATES", "200,500,1000,2000"), "fixed rates in req/s for the go-sdk targets ($LOAD_RATES)")
	evRates := flag.String("everything-rates", env("LOAD_EVERYTHING_RATES", "100"), "fixed rates for server-everything; empty: skip it ($LOAD_EVERYTHING_RATES)")
	flag.IntVar(&p.Concurrency, "concurrency", envInt("LOAD_CONCURRENCY", p.Concurrency), "closed-loop workers for saturation ($LOAD_CONCURRENCY)")
	flag.IntVar(&p.Sessions, "sessions", envInt("LOAD_SESSIONS", p.Sessions), "open-loop sessions ($LOAD_SESSIONS)")
	flag.DurationVar(&p.Warmup, "warmup", envDur("LOAD_WARMUP", p.Warmup), "warm-up per target ($LOAD_WARMUP)")
	noSat := flag.Bool("no-saturation", false, "skip the closed-loop runs")
	scenarios := flag.String("scenarios", env("LOAD_SCENARIOS", "main,federation"), "what to measure, comma-separated: main (direct / bare proxy / gateway, and server-everything), federation (3 targets × 100 tools) ($LOAD_SCENARIOS)")
	fp := load.DefaultFederationPlan()
	fedCall := flag.String("federation-call-rates", env("LOAD_FEDERATION_CALL_RATES", "200"), "fixed rates for tools/call in the federation scenario ($LOAD_FEDERATION_CALL_RATES)")
	fedList := flag.String("federation-list-rates", env("LOAD_FEDERATION_LIST_RATES", "20"), "fixed rates for tools/list (300 tools) in the federation scenario ($LOAD_FEDERATION_LIST_RATES)")
	gateway := flag.String("gateway", os.Getenv("MCPGATE_BIN"), "gateway binary (default $MCPGATE_BIN, else built from ./cmd/gateway)")
	flag.Parse()

	var err error
	if p.Rates, err = parseRates(*rates); err != nil {
		log.Fatalf("load: -rates: %v", err)
	}
	if p.EverythingRates, err = parseRates(*evRates); err != nil {
		log.Fatalf("load: -everything-rates: %v", err)
	}
	if fp.CallRates, err = parseRates(*fedCall); err != nil {
		log.Fatalf("load: -federation-call-rates: %v", err)
	}
	if fp.ListRates, err = parseRates(*fedList); err != nil {
		log.Fatalf("load: -federation-list-rates: %v", err)
	}
	mainScenario, federation := false, false
	for sc := range strings.SplitSeq(*scenarios, ",") {
		switch strings.TrimSpace(sc) {
		case "main":
			mainScenario = true
		case "federation":
			federation = true
		case "":
		default:
			log.Fatalf("load: -scenarios: unknown scenario %q (want main, federation)", sc)
		}
	}
	if !mainScenario && !federation {
		log.Fatalf("load: -scenarios %q: nothing to measure", *scenarios)
	}
	p.SkipMain = !mainScenario
	p.Saturation = !*noSat
	p.EverythingSaturation = !*noSat
	fp.Saturation = !*noSat
	if federation {
		p.Federation = fp
	}
	withEverything := mainScenario && (len(p.EverythingRates) > 0 || p.EverythingSaturation && *evRates != "")
	p.Logf = log.Printf

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("starting upstream, bare proxy, gateway%s%s", map[bool]string{true: ", server-everything", false: ""}[withEverything],
		map[bool]string{true: ", the federation scenario (4 servers, bare proxy, 2 gateways)", false: ""}[federation])
	e, err := load.Setup(ctx, load.Options{GatewayBin: *gateway, Everything: withEverything, Federation: federation})
	if err != nil {
		log.Fatal(err)
	}
	res, err := load.Run(ctx, e, p)
	e.Close()
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		*out = filepath.Join("tests", "load", "results", res.Start.Format("2006-01-02T1504Z")+".md")
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := res.WriteMarkdown(f); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := res.WriteMarkdown(os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nwritten to %s\n", *out)
}

func parseRates(s string) ([]float64, error) {
	var rs []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("%q is not a positive rate", f)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDur(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		log.Fatalf("load: $%s=%q is not a duration", k, v)
	}
	return def
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		log.Fatalf("load: $%s=%q is not an integer", k, v)
	}
	return def
}
