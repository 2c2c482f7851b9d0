#!/usr/bin/env bash
# demo.sh: the walkthrough on loopback (make demo calls it).
#
# Starts, all on 127.0.0.1:
#   Dex               :5556  the walkthrough's Keycloak realm (examples/quickstart/dex/dex.yaml)
#   server-everything :3001  the MCP server behind the gateway
#   mcpgate           :8080  bin/gateway run -f examples/quickstart
# then prints the walkthrough's commands, ready to paste, and runs until
# Ctrl-C / SIGTERM, when it stops everything it started. Logs: demo-run/.
#
#   scripts/demo.sh           interactive
#   scripts/demo.sh --check   start, run the walkthrough's two curls, assert
#                             401 and 200 with the tool list, stop, exit 0/1
#
# Environment: MCPGATE_BIN (a gateway binary to use instead of building
# bin/gateway), DEX_BIN, NODE_MODULES (as in tests/e2e/harness).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CHECK=
case "${1:-}" in
--check) CHECK=1 ;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^#/p}' "$ROOT/scripts/demo.sh" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

DEX_BIN="${DEX_BIN:-$ROOT/bin/dex-v2.45.1}"
NODE_MODULES="${NODE_MODULES:-$ROOT/tests/node/node_modules}"
# MCPGATE_BIN: use this gateway binary instead of building bin/gateway.
GATEWAY_BIN="${MCPGATE_BIN:-$ROOT/bin/gateway}"
RUN_DIR="$ROOT/demo-run"
DEX_PORT=5556
UPSTREAM_PORT=3001
GATEWAY_PORT=8080
ISSUER="http://127.0.0.1:$DEX_PORT/realms/agentgateway"

if [[ -t 1 ]]; then
	say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
else
	say() { printf 'demo: %s\n' "$*"; }
fi
die() {
	printf 'demo: ERROR: %s\n' "$*" >&2
	exit 1
}

# --- children ----------------------------------------------------------------
PIDS=()
NAMES=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#PIDS[@]})); then
		say "stopping ${NAMES[*]}"
		local i
		for i in "${!PIDS[@]}"; do
			kill -TERM -- "-${PIDS[$i]}" 2>/dev/null || true
		done
		# Give them 10s to exit, then make sure.
		for _ in $(seq 100); do
			local alive=
			for i in "${!PIDS[@]}"; do
				kill -0 "${PIDS[$i]}" 2>/dev/null && alive=1
			done
			[[ -z "$alive" ]] && break
			sleep 0.1
		done
		for i in "${!PIDS[@]}"; do
			kill -KILL -- "-${PIDS[$i]}" 2>/dev/null || true
		done
		wait 2>/dev/null || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run CMD in the background in a session of its own,
# output to demo-run/NAME.log. Its own session: a Ctrl-C reaches only this
# script, which then stops the children in order (a child that handled the
# SIGINT itself would otherwise look like a crash).
start() {
	local name=$1
	shift
	setsid "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
	PIDS+=($!)
	NAMES+=("$name")
}

# wait_up NAME CHECK-CMD...: poll until CHECK-CMD succeeds (30s), failing
# early when NAME's process has exited.
wait_up() {
	local name=$1 pid=${PIDS[-1]}
	shift
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then
			say "$name is up"
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$RUN_DIR/$name.log" >&2 || true
			die "$name exited during startup (log: demo-run/$name.log)"
		fi
		sleep 0.1
	done
	tail -n 30 "$RUN_DIR/$name.log" >&2 || true
	die "$name did not come up in 30s (log: demo-run/$name.log)"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- prerequisites -----------------------------------------------------------
command -v setsid >/dev/null || die "setsid not found (Debian: util-linux)"
command -v curl >/dev/null || die "curl not found (Debian: apt-get install curl)"
command -v jq >/dev/null || die "jq not found (Debian: apt-get install jq)"

"$ROOT/scripts/install-tools.sh"
[[ -x "$DEX_BIN" ]] || die "Dex not found at $DEX_BIN"
EVERYTHING="$NODE_MODULES/@modelcontextprotocol/server-everything/dist/index.js"
[[ -f "$EVERYTHING" ]] || die "server-everything not found at $EVERYTHING"

if [[ -z "${MCPGATE_BIN:-}" ]]; then
	command -v go >/dev/null || die "go not found: install Go to build the gateway"
	say "building bin/gateway"
	go build -o "$GATEWAY_BIN" ./cmd/gateway || die "go build ./cmd/gateway failed"
fi
[[ -x "$GATEWAY_BIN" ]] || die "gateway binary $GATEWAY_BIN is not executable"

for port in $DEX_PORT $UPSTREAM_PORT $GATEWAY_PORT; do
	if port_busy "$port"; then
		die "127.0.0.1:$port is already in use (another demo running?); the demo needs ports $DEX_PORT, $UPSTREAM_PORT and $GATEWAY_PORT"
	fi
done

mkdir -p "$RUN_DIR"

# --- start -------------------------------------------------------------------
dex_up() { [[ "$(http_code "$ISSUER/.well-known/openid-configuration")" == 200 ]]; }
# GET /mcp without a session answers 400 once server-everything listens.
everything_up() { [[ "$(http_code "http://127.0.0.1:$UPSTREAM_PORT/mcp")" == 400 ]]; }

start dex "$DEX_BIN" serve "$ROOT/examples/quickstart/dex/dex.yaml"
wait_up dex dex_up

# server-everything binds every interface; the preload keeps it on 127.0.0.1.
start server-everything env PORT=$UPSTREAM_PORT MCPGATE_LISTEN_HOST=127.0.0.1 \
	node --require "$ROOT/tests/node/loopback-only.cjs" "$EVERYTHING" streamableHttp
wait_up server-everything everything_up

start gateway "$GATEWAY_BIN" run -f "$ROOT/examples/quickstart" --bind 127.0.0.1
wait_up gateway port_busy "$GATEWAY_PORT"

# --- the walkthrough ---------------------------------------------------------
TOKEN_CMD="curl -s $ISSUER/token \\
  -d client_id=mcp-agent -d client_secret=agent-secret-123 \\
  -d username=agent-user -d password=agent-pass \\
  -d grant_type=password -d scope=openid | jq -r .access_token"
NOAUTH_CMD="curl -s -w \"\\nHTTP Status: %{http_code}\\n\" http://localhost:$GATEWAY_PORT/mcp \\
  -H \"Content-Type: application/json\" \\
  -d '{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"id\":1}'"
AUTH_CMD="curl -s http://localhost:$GATEWAY_PORT/mcp \\
  -H \"Content-Type: application/json\" \\
  -H \"Authorization: Bearer \$TOKEN\" \\
  -d '{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"id\":1}' | jq ."

if [[ -z "$CHECK" ]]; then
	cat <<EOF

  mcpgate is running the walkthrough on loopback (logs in demo-run/):
    Dex (IdP)          $ISSUER
    server-everything  http://127.0.0.1:$UPSTREAM_PORT/mcp
    gateway            http://localhost:$GATEWAY_PORT/mcp   (config: examples/quickstart/)

  Get a token (Step 2):

TOKEN=\$($TOKEN_CMD)

  Without a token, 401 (Step 4):

$NOAUTH_CMD

  With the token, the tool list:

$AUTH_CMD

  Ctrl-C stops everything.
EOF
	# Run until a signal arrives (the traps exit) or a component dies.
	set +e
	wait -n "${PIDS[@]}"
	rc=$?
	set -e
	for i in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
			tail -n 30 "$RUN_DIR/${NAMES[$i]}.log" >&2 || true
			die "${NAMES[$i]} exited unexpectedly (status $rc; log: demo-run/${NAMES[$i]}.log)"
		fi
	done
	exit 0
fi

# --- --check: run the walkthrough's commands and assert their results --------
fail() {
	printf 'demo --check: FAIL: %s\n' "$*" >&2
	exit 1
}
say "check: getting a token from Dex"
TOKEN=$(eval "$TOKEN_CMD")
[[ -n "$TOKEN" && "$TOKEN" != null ]] || fail "no access_token from $ISSUER/token"

say "check: without a token"
out=$(curl -s -D "$RUN_DIR/noauth.headers" -w "\nHTTP Status: %{http_code}\n" "http://localhost:$GATEWAY_PORT/mcp" \
	-H "Content-Type: application/json" \
	-d '{"jsonrpc":"2.0","method":"tools/list","id":1}') || fail "curl to the gateway failed"
printf '%s\n' "$out"
grep -q '^HTTP Status: 401$' <<<"$out" || fail "want HTTP Status: 401"
grep -qi '^www-authenticate: Bearer .*resource_metadata=' "$RUN_DIR/noauth.headers" ||
	fail "want a WWW-Authenticate: Bearer resource_metadata=... header, got: $(cat "$RUN_DIR/noauth.headers")"

say "check: with the token"
code=$(curl -s -o "$RUN_DIR/auth.body" -w '%{http_code}' "http://localhost:$GATEWAY_PORT/mcp" \
	-H "Content-Type: application/json" \
	-H "Authorization: Bearer $TOKEN" \
	-d '{"jsonrpc":"2.0","method":"tools/list","id":1}') || fail "curl to the gateway failed"
[[ "$code" == 200 ]] || fail "want HTTP 200, got $code: $(head -c 500 "$RUN_DIR/auth.body")"
tools=$(jq -r '.result.tools[].name' "$RUN_DIR/auth.body") ||
	fail "the answer is not a JSON tools/list result: $(head -c 500 "$RUN_DIR/auth.body")"
printf '%s\n' "$tools" | sed 's/^/  tool: /'
grep -qx get-sum <<<"$tools" || fail "get-sum missing from the tool list"

say "check: PASS (401 without a token, 200 with the tool list)"
