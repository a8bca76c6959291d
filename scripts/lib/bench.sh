# Shared by scripts/bench-server and scripts/bench-relay (source it, don't run it; the caller has
# `set -euo pipefail` and runs from the repository root): building, pinned child processes that are
# always cleaned up, the load generators and their JSON lines, peak RSS of a process.
#
# Load generators: sioload (the team's, ../shared/tools/sioload: one publisher, N viewers, the plain
# `watch` + `frame` contract; it measures the server's CPU and peak RSS and its own CPU) and, for
# `sioedge relay`'s full contract that sioload cannot speak (`announce` before `media`),
# scripts/bench/bench-client.rs.

BENCH_CLIENT=target/release/examples/bench-client
BENCH_TMP=$(mktemp -d)
bench_pids=()

# Kills every child this script started (and only those), then removes the scratch directory.
bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${bench_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  bench_pids=()
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'echo "interrupted: stopping every process this benchmark started" >&2; exit 130' INT TERM HUP

# bench_fail MESSAGE [LOGFILE...]: prints the message and the end of each log, exits 1.
bench_fail() {
  echo "bench: $1" >&2
  shift
  local f
  for f in "$@"; do
    [ -s "$f" ] && { echo "--- last lines of $(basename "$f"):" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

# bench_check_cpus CPU...: every CPU index exists on this machine.
bench_check_cpus() {
  local n c
  n=$(nproc --all)
  for c in "$@"; do
    [[ $c =~ ^[0-9]+$ ]] && [ "$c" -lt "$n" ] || bench_fail "CPU '$c' does not exist (this machine has $n: 0..$((n - 1)))"
  done
}

# bench_build_ours CARGO_ARGS...: release build of sioedge pieces without GStreamer.
bench_build_ours() {
  echo "building sioedge ($*) (release, --no-default-features)..." >&2
  cargo build --quiet --release --no-default-features "$@" || bench_fail "cargo build of sioedge failed"
}

# bench_build_sioload: builds sioload from SIOLOAD_SRC (default ../shared/tools/sioload, next to
# this repository) into target/sioload, as its README says; sets BENCH_SIOLOAD.
bench_build_sioload() {
  local src=${SIOLOAD_SRC:-../shared/tools/sioload}
  [ -f "$src/Cargo.toml" ] || bench_fail "the load generator sioload is not at $src (expected the team's tools \
checked out next to this repository, as ../shared/tools/sioload; or set SIOLOAD_SRC=/path/to/sioload)"
  echo "building sioload from $src (release)..." >&2
  cargo build --quiet --release --manifest-path "$src/Cargo.toml" --target-dir target/sioload ||
    bench_fail "cargo build of sioload failed"
  BENCH_SIOLOAD=target/sioload/release/sioload
}

# bench_build_peer: builds the socketioxide peer in target/bench-peer; sets BENCH_PEER (its binary)
# and BENCH_PEER_VERSION (socketioxide's version from its Cargo.lock).
bench_build_peer() {
  local dir=target/bench-peer
  mkdir -p "$dir"
  cp -r scripts/bench/socketioxide-peer/. "$dir/"
  echo "building the socketioxide peer in $dir (release)..." >&2
  (cd "$dir" && cargo build --quiet --release) || bench_fail "cargo build of the socketioxide peer failed"
  BENCH_PEER=$dir/target/release/socketioxide-bench-peer
  BENCH_PEER_VERSION=$(grep -A1 'name = "socketioxide"' "$dir/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')
}

# bench_spawn CPU NAME COMMAND...: starts COMMAND pinned to CPU in the background, stdout and stderr
# in $BENCH_TMP/NAME.out and .err; sets BENCH_PID. It is killed at exit unless bench_stop'ed first.
bench_spawn() {
  local cpu=$1 name=$2
  shift 2
  # Emptied here, not by the background redirection, which may come after the first look at them.
  : >"$BENCH_TMP/$name.out"
  : >"$BENCH_TMP/$name.err"
  taskset -c "$cpu" "$@" >>"$BENCH_TMP/$name.out" 2>>"$BENCH_TMP/$name.err" &
  BENCH_PID=$!
  bench_pids+=("$BENCH_PID")
}

# bench_stop PID: stops a child started by bench_spawn.
bench_stop() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${bench_pids[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  bench_pids=("${keep[@]}")
}

# bench_wait_line PID NAME SED_SCRIPT [SECS]: waits (default 10 s) until `sed -n SED_SCRIPT` prints
# something from NAME's stdout and prints it; fails clearly if the process dies or time runs out.
bench_wait_line() {
  local pid=$1 name=$2 script=$3 secs=${4:-10} got i
  for ((i = 0; i < secs * 20; i++)); do
    got=$(sed -n "$script" "$BENCH_TMP/$name.out" | head -n 1)
    [ -n "$got" ] && { echo "$got"; return 0; }
    kill -0 "$pid" 2>/dev/null || bench_fail "$name exited during start-up" "$BENCH_TMP/$name.err" "$BENCH_TMP/$name.out"
    sleep 0.05
  done
  bench_fail "$name did not start within $secs s" "$BENCH_TMP/$name.err" "$BENCH_TMP/$name.out"
}

# bench_rss_kib PID: peak resident set size (VmHWM) in KiB.
bench_rss_kib() {
  awk '/^VmHWM/ {print $2}' "/proc/$1/status"
}

# bench_load: the 1-minute load average now (other work on the machine skews the numbers).
bench_load() {
  cut -d' ' -f1 /proc/loadavg
}

# bench_generate CPU NAME COMMAND...: runs a load generator pinned to CPU (bounded in time, killed
# at exit like the servers) and sets BENCH_OUT to its JSON line (the last line of its stdout).
# Call it directly, not in $(...), so that the exit trap knows the process.
bench_generate() {
  local cpu=$1 name=$2 pid
  shift 2
  timeout --kill-after=5 $((secs + 120)) taskset -c "$cpu" "$@" >"$BENCH_TMP/$name.out" 2>"$BENCH_TMP/$name.err" &
  pid=$!
  bench_pids+=("$pid")
  wait "$pid" || bench_fail "the load generator failed ($*)" "$BENCH_TMP/$name.err" "$BENCH_TMP/$name.out"
  bench_stop "$pid"
  BENCH_OUT=$(tail -n 1 "$BENCH_TMP/$name.out")
}

# bench_sioload CPU ARGS...: sioload for BENCH_SECS measured seconds (after its 1 s warm-up); its
# one-line human summary goes to stderr, so a saturated generator or a busy machine shows at once.
bench_sioload() {
  local cpu=$1
  shift
  bench_generate "$cpu" sioload "$BENCH_SIOLOAD" --duration "$secs" "$@"
  tail -n 1 "$BENCH_TMP/sioload.err" >&2
}

# bench_client CPU ARGS...: the relay-contract generator (scripts/bench/bench-client.rs) for
# BENCH_SECS measured seconds (after 1 s of warm-up).
bench_client() {
  local cpu=$1
  shift
  bench_generate "$cpu" bench-client "$BENCH_CLIENT" --secs "$secs" "$@"
}

# bench_merge JSON FIELD...: the JSON object with fields added, each KEY=STRING or KEY:=NUMBER.
bench_merge() {
  python3 - "$@" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
for field in sys.argv[2:]:
    k, v = field.split("=", 1)
    r[k.rstrip(":")] = json.loads(v) if k.endswith(":") else v
print(json.dumps(r))
PY
}
