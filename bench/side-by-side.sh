#!/usr/bin/env bash
# Runs the same reservation workload on Promesa, on Redis (a Lua reserve script) and on
# PostgreSQL (a conditional UPDATE and an INSERT in one statement) on this machine in one
# run, and prints one markdown table of the results. It writes the table, with the
# machine, the versions and the exact commands, to a results file too.
#
# Usage: bench/side-by-side.sh [--quick]
#
# The workload: N SKUs at one location, each with ON_HAND units. One reservation takes
# q units of one SKU if it has them, and records the reservation. The SKU comes from a
# uniform integer u in [0, 2^30): uniform SKU floor(u / 2^30 * N), or hot SKU k - 1 with
# rank k = floor(N^(u / 2^30)), so the rank k has probability about 1/k. q is uniform in
# 1..5. promesa-loadgen (--workload peer), side-by-side/reserve.lua and
# side-by-side/reserve.sql make the same draw.
#
# The script installs Redis, PostgreSQL and jq from Debian's packages when they are
# missing. It starts its own Redis, PostgreSQL and promesa-server on 127.0.0.1, with their
# data in a new temporary folder on a real disk, and at exit it stops them and removes the
# folder. Every variant runs for SECS seconds (30, or 4 with --quick) behind a timeout.
# Clients and servers share the machine's cores, so before each variant the script waits
# a little for other processes to leave the CPU, and it records how much CPU they took
# during the variant.
#
# Environment (defaults in brackets):
#   SECS [30]             seconds measured per variant
#   SKUS [100000]         SKUs
#   ON_HAND [100000000]   units of every SKU at the start of each variant
#   REDIS_PORT [6392], PG_PORT [5442], PROMESA_PORT [7492]   ports on 127.0.0.1
#   PROMESA_CONNECTIONS [2], PROMESA_IN_FLIGHT [25]   frames in flight = their product
#   REDIS_CLIENTS [50], PG_CLIENTS [16], PG_THREADS [2]
#   ONLY [.]              extended regex: run only the rows whose "system variant
#                         durability" matches it
#   QUIET_WAIT_SECS [20], QUIET_CORES [0.25]   before each variant, wait up to
#                         QUIET_WAIT_SECS until other processes use less than QUIET_CORES
#   WORK_PARENT [/var/tmp]   where the temporary data folder is made; it must not be tmpfs
#   KEEP_WORK [0]         1 keeps the temporary folder, with the servers' logs
#   BUILD [1]             0 skips the cargo build and uses the release binaries as found
#   RESULTS               results file [target/side-by-side/results-DATE.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$REPO/bench/side-by-side

QUICK=0
case "${1:-}" in
    "") ;;
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "side-by-side.sh: unknown argument '$1'; the only option is --quick" >&2
        exit 2
        ;;
esac

if ((QUICK)); then SECS=${SECS:-4}; else SECS=${SECS:-30}; fi
SKUS=${SKUS:-100000}
ON_HAND=${ON_HAND:-100000000}
REDIS_PORT=${REDIS_PORT:-6392}
PG_PORT=${PG_PORT:-5442}
PROMESA_PORT=${PROMESA_PORT:-7492}
PROMESA_CONNECTIONS=${PROMESA_CONNECTIONS:-2}
PROMESA_IN_FLIGHT=${PROMESA_IN_FLIGHT:-25}
REDIS_CLIENTS=${REDIS_CLIENTS:-50}
PG_CLIENTS=${PG_CLIENTS:-16}
PG_THREADS=${PG_THREADS:-2}
ONLY=${ONLY:-.}
WORK_PARENT=${WORK_PARENT:-/var/tmp}
KEEP_WORK=${KEEP_WORK:-0}
QUIET_WAIT_SECS=${QUIET_WAIT_SECS:-20}
QUIET_CORES=${QUIET_CORES:-0.25}
BUILD=${BUILD:-1}
# redis-benchmark's __rand_int__ is random() % RANGE, which has no bias because 2^30
# divides the 2^31 values of random().
DRAW_RANGE=1073741824

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S')
T0=$SECONDS
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
SUFFIX=""
((QUICK)) && SUFFIX=-quick
RESULTS=${RESULTS:-$TARGET_DIR/side-by-side/results-$STAMP$SUFFIX.md}

for value in SECS SKUS ON_HAND REDIS_PORT PG_PORT PROMESA_PORT PROMESA_CONNECTIONS PROMESA_IN_FLIGHT \
    REDIS_CLIENTS PG_CLIENTS PG_THREADS; do
    if ! [[ ${!value} =~ ^[1-9][0-9]*$ ]]; then
        echo "side-by-side.sh: $value='${!value}' is not a positive whole number" >&2
        exit 2
    fi
done
if ! [[ $QUIET_WAIT_SECS =~ ^[0-9]+$ && $QUIET_CORES =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "side-by-side.sh: QUIET_WAIT_SECS='$QUIET_WAIT_SECS' must be a whole number of seconds" \
        "and QUIET_CORES='$QUIET_CORES' a number of cores" >&2
    exit 2
fi

say() { echo "side-by-side: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# --- Packages -------------------------------------------------------------------------

# Runs a command as root: directly when root, else through sudo if there is one.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is missing; run it as root or install the packages by hand"
    fi
}

postgres_bin() {
    if [ -n "${PGBIN:-}" ]; then
        echo "$PGBIN"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$found" ] && echo "$found"
}

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_OURS=0

install_missing_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    { command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; } || missing+=(redis-tools)
    local bin
    bin=$(postgres_bin || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pgbench" ] || [ ! -x "$bin/psql" ]; then
        # Debian's postgresql-NN package ships pgbench, so postgresql-contrib is not needed.
        missing+=(postgresql)
    fi
    command -v jq >/dev/null || missing+=(jq)
    ((${#missing[@]} == 0)) && return

    command -v apt-get >/dev/null || die "missing ${missing[*]}, and apt-get is not there to install them"
    say "installing ${missing[*]} from Debian's packages"
    # Keep the packages' init scripts from starting servers on the default ports: this
    # script starts its own instances.
    if [ ! -e "$POLICY_RC" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$POLICY_RC && chmod 755 $POLICY_RC"
        POLICY_RC_OURS=1
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    remove_policy_rc
}

remove_policy_rc() {
    if ((POLICY_RC_OURS)); then
        as_root rm -f "$POLICY_RC"
        POLICY_RC_OURS=0
    fi
}

install_missing_packages
PGBIN=$(postgres_bin) || die "no PostgreSQL binaries under /usr/lib/postgresql/*/bin; set PGBIN"

# --- Temporary folder and clean-up ----------------------------------------------------

mkdir -p "$WORK_PARENT"
WORK=$(mktemp -d "$WORK_PARENT/promesa-side-by-side.XXXXXX")
# PostgreSQL runs as the postgres user when this script runs as root, so that user needs
# to reach its folder inside this one.
chmod 755 "$WORK"
WORK_FS=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
WORK_DEVICE=$(df -T "$WORK" | awk 'NR == 2 { print $1 }')

REDIS_PID=""
PROMESA_PID=""
PG_STARTED=0

# Runs a PostgreSQL server program as the postgres user when root, since they refuse
# to run as root.
as_postgres() {
    if ((EUID == 0)); then
        (cd "$WORK" && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

stop_promesa() {
    if [ -n "$PROMESA_PID" ]; then
        # The data folder is thrown away, so the server gets SIGKILL instead of a clean
        # shutdown, which would first write a snapshot of every reservation. Removing the
        # folder at once also drops its unwritten pages, which the kernel would otherwise
        # write back during the next variant.
        kill -KILL "$PROMESA_PID" 2>/dev/null || true
        wait "$PROMESA_PID" 2>/dev/null || true
        PROMESA_PID=""
        rm -rf "$WORK/promesa"
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_promesa
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    if ((PG_STARTED)); then
        as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    remove_policy_rc
    if [ "$KEEP_WORK" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
# Bash runs these traps once the foreground command ends, so a signal stops the script
# at the latest when the running variant ends.
trap 'exit 130' INT
trap 'exit 143' TERM

case "$WORK_FS" in
    tmpfs | ramfs | overlay)
        die "$WORK is on $WORK_FS, not on a disk, so fsync costs nothing there; set WORK_PARENT to a folder on a disk"
        ;;
esac
say "data folder $WORK on $WORK_FS ($WORK_DEVICE)"

# --- Build ----------------------------------------------------------------------------

SERVER_BIN=$TARGET_DIR/release/promesa-server
LOADGEN_BIN=$TARGET_DIR/release/promesa-loadgen
if [ "$BUILD" = 0 ]; then
    BUILT="as found in $TARGET_DIR/release (BUILD=0, not rebuilt)"
    [ -x "$SERVER_BIN" ] && [ -x "$LOADGEN_BIN" ] || die "BUILD=0, but $SERVER_BIN or $LOADGEN_BIN is missing"
else
    say "building promesa-server and promesa-loadgen (release)"
    (cd "$REPO" && cargo build --release --quiet -p promesa-server -p promesa-loadgen)
    BUILT="built by this run with cargo build --release -p promesa-server -p promesa-loadgen"
fi

# --- Start Redis and PostgreSQL --------------------------------------------------------

mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --daemonize no \
    --dir "$WORK/redis" --logfile "$WORK/redis/redis.log" --save '' --appendonly no &
REDIS_PID=$!
REDIS=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
for _ in $(seq 100); do
    [ "$("${REDIS[@]}" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited at start: $(tail -5 "$WORK/redis/redis.log")"
    sleep 0.1
done
[ "$("${REDIS[@]}" ping 2>/dev/null)" = PONG ] || die "redis-server did not respond to PING on 127.0.0.1:$REDIS_PORT within 10 s"

mkdir -p "$WORK/pg" "$WORK/pglog"
((EUID == 0)) && chown postgres:postgres "$WORK/pg"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -5 "$WORK/initdb.log")"
# fsync stays on in every variant, and each variant sets the durability of a commit with
# synchronous_commit. A large max_wal_size and checkpoint_timeout keep checkpoints out
# of the measured runs. No Unix socket: every client connects to 127.0.0.1.
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories= -c shared_buffers=1GB \
     -c max_wal_size=8GB -c checkpoint_timeout=30min -c max_connections=100" >/dev/null ||
    die "PostgreSQL did not start: $(tail -5 "$WORK/pg/server.log" 2>/dev/null)"
PG_STARTED=1
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)

# --- Results --------------------------------------------------------------------------

TABLE=$WORK/table.md
COMMANDS=$WORK/commands.txt
: >"$COMMANDS"
printf '| %-8s | %-22s | %-22s | %9s | %8s | %8s | %-28s |\n' \
    system variant durability ops/s 'p50 ms' 'p99 ms' check >"$TABLE"
echo '|----------|------------------------|------------------------|----------:|---------:|---------:|------------------------------|' >>"$TABLE"
# Rows kept for the ratios: "system|variant|durability|ops/s|check".
TABLE_ROWS=$WORK/table-rows.txt
: >"$TABLE_ROWS"
SORT_KEY=""
FIGURES=$WORK/figures.txt
: >"$FIGURES"
OTHER_CPU_LIST=$WORK/other-cpu.md
: >"$OTHER_CPU_LIST"

# Adds a row to the table, in the place SORT_KEY gives it; call it after variant_end,
# whose OTHER_CPU it reports.
row() { # system variant durability ops/s p50-ms p99-ms check
    printf '%s\t| %-8s | %-22s | %-22s | %9s | %8s | %8s | %-28s |\n' "$SORT_KEY" "$@" >>"$TABLE_ROWS"
    echo "$1|$2|$3|$4|$7" >>"$FIGURES"
    printf '%s\t- %s, %s, %s: %s\n' "$SORT_KEY" "$1" "$2" "$3" "$OTHER_CPU" >>"$OTHER_CPU_LIST"
    say "$1, $2, $3: $4 ops/s, p50 $5 ms, p99 $6 ms, $7; other processes used $OTHER_CPU cores meanwhile"
}

wanted() { [[ "$1 $2 $3" =~ $ONLY ]]; }

record_command() { # text
    echo "$*" >>"$COMMANDS"
}

# CPU accounting, to tell how much other work on the machine took from a variant. The
# benchmark's own CPU is this shell with every child it has reaped (clients, promesa-server,
# tools), plus redis-server and the PostgreSQL processes, which run all along. The rest of
# the machine's busy time is other processes and kernel threads, including the kernel's
# writes to disk for the servers, so it is never quite zero.
CLOCK_TICKS=$(getconf CLK_TCK)

machine_busy_ticks() {
    # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal ...
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Prints the CPU ticks of one process, its reaped children's included (0 if it is gone).
process_ticks() { # pid
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    # Fields after the command name in brackets: utime, stime, cutime and cstime are
    # the 12th to the 15th.
    awk '{ print $12 + $13 + $14 + $15 }' <<<"${stat##*) }"
}

benchmark_ticks() {
    local total=0 pid
    total=$(($(process_ticks $$) + $(process_ticks "$REDIS_PID")))
    local postmaster
    postmaster=$(head -1 "$WORK/pg/postmaster.pid" 2>/dev/null || true)
    if [ -n "$postmaster" ]; then
        for pid in "$postmaster" $(pgrep -P "$postmaster" || true); do
            total=$((total + $(process_ticks "$pid")))
        done
    fi
    echo "$total"
}

# Prints "seconds busy-ticks benchmark-ticks" for other_cores.
cpu_snapshot() {
    echo "$(date +%s.%N) $(machine_busy_ticks) $(benchmark_ticks)"
}

# Prints the cores' worth of CPU that the rest of the machine used since the snapshot.
other_cores() { # snapshot
    local start_secs start_busy start_ours
    read -r start_secs start_busy start_ours <<<"$1"
    local now busy ours
    read -r now busy ours <<<"$(cpu_snapshot)"
    awk -v busy=$((busy - start_busy)) -v ours=$((ours - start_ours)) -v hz="$CLOCK_TICKS" \
        -v secs="$(awk -v a="$now" -v b="$start_secs" 'BEGIN { print a - b }')" \
        'BEGIN { other = (busy - ours) / hz / secs; if (other < 0) other = 0; printf "%.2f", other }'
}

# Waits, at most QUIET_WAIT_SECS, until the rest of the machine used less than
# QUIET_CORES of CPU over one second.
wait_for_quiet() {
    QUIET_WAITED=0
    local snapshot
    while ((QUIET_WAITED < QUIET_WAIT_SECS)); do
        snapshot=$(cpu_snapshot)
        sleep 1
        if awk -v other="$(other_cores "$snapshot")" -v quiet="$QUIET_CORES" 'BEGIN { exit !(other < quiet) }'; then
            return
        fi
        QUIET_WAITED=$((QUIET_WAITED + 1))
    done
}

VARIANT_SNAPSHOT=""
QUIET_WAITED=0

variant_begin() {
    wait_for_quiet
    VARIANT_SNAPSHOT=$(cpu_snapshot)
}

# Records the CPU that the rest of the machine used since variant_begin in OTHER_CPU.
variant_end() {
    OTHER_CPU=$(other_cores "$VARIANT_SNAPSHOT")
    echo "#   CPU used outside the benchmark meanwhile: $OTHER_CPU cores of $(nproc), after waiting ${QUIET_WAITED}s for a quiet machine" >>"$COMMANDS"
}

milliseconds() { # microseconds
    awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'
}

# --- Promesa --------------------------------------------------------------------------

promesa_run() { # durability(sync|none) batch distribution(uniform|zipf)
    local durability=$1 batch=$2 distribution=$3
    local draw=uniform
    [ "$distribution" = zipf ] && draw=hot
    local variant="$draw, $batch per frame"
    local durability_label="$durability"
    [ "$durability" = none ] && durability_label="none (NOT durable)"
    wanted promesa "$variant" "$durability_label" || return 0
    variant_begin
    SORT_KEY=$(printf '1 %s %02d %s' "${durability/sync/1}" "$batch" "$distribution")

    local data=$WORK/promesa
    rm -rf "$data"
    # Empty the log here: the background job opens it only after the fork, and the
    # readiness check below must not find the previous server's "serving" line.
    : >"$WORK/promesa-server.log"
    RUST_LOG=info "$SERVER_BIN" --listen "127.0.0.1:$PROMESA_PORT" --data-dir "$data" \
        --durability "$durability" 2>>"$WORK/promesa-server.log" &
    PROMESA_PID=$!
    local ready=0
    for _ in $(seq 600); do
        if grep -q serving "$WORK/promesa-server.log"; then
            ready=1
            break
        fi
        kill -0 "$PROMESA_PID" 2>/dev/null || break
        sleep 0.1
    done
    ((ready)) || die "promesa-server did not start within 60 s: $(tail -5 "$WORK/promesa-server.log")"

    local loadgen=("$LOADGEN_BIN" --addr "127.0.0.1:$PROMESA_PORT" --server-data-dir "$data")
    timeout 300 "${loadgen[@]}" seed --skus "$SKUS" --locations 1 --on-hand "$ON_HAND" \
        >"$WORK/seed.log" 2>&1 || die "promesa-loadgen seed failed: $(tail -5 "$WORK/seed.log")"

    local json=$WORK/promesa.json
    rm -f "$json"
    local run=(run --workload peer --dist "$distribution" --skus "$SKUS" --batch "$batch"
        --connections "$PROMESA_CONNECTIONS" --in-flight "$PROMESA_IN_FLIGHT"
        --duration-secs $((SECS + 1)) --warmup-secs 1 --json "$json")
    record_command "promesa-server --listen 127.0.0.1:$PROMESA_PORT --data-dir DATA --durability $durability"
    record_command "promesa-loadgen --addr 127.0.0.1:$PROMESA_PORT --server-data-dir DATA seed --skus $SKUS --locations 1 --on-hand $ON_HAND"
    record_command "promesa-loadgen --addr 127.0.0.1:$PROMESA_PORT --server-data-dir DATA ${run[*]/#$WORK\//}"
    if ! timeout $((SECS + 120)) "${loadgen[@]}" "${run[@]}" >"$WORK/loadgen.log" 2>&1 || [ ! -s "$json" ]; then
        say "promesa-loadgen run failed: $(tail -5 "$WORK/loadgen.log")"
        stop_promesa
        variant_end
        row promesa "$variant" "$durability_label" - - - "void: the load generator failed"
        return 0
    fi
    stop_promesa
    variant_end

    local ops p50 p99 count refused errors
    read -r ops p50 p99 count refused errors < <(jq -r \
        '.total | [(.ops_per_sec | floor), .latency_us.p50, .latency_us.p99, .count, .refused, .errors] | @tsv' "$json")
    # NOTE: the load generator counts a line held in part as held, not as a refusal. With
    # ON_HAND units per SKU no SKU comes near running out, so no line is held in part.
    local check="ok: $count held, 0 refused"
    if ((refused > 0 || errors > 0)); then
        check="void: $refused refused, $errors errors"
    fi
    row promesa "$variant" "$durability_label" "$ops" "$(milliseconds "$p50")" "$(milliseconds "$p99")" "$check"
}

# --- Redis ----------------------------------------------------------------------------

REDIS_SHA=""

redis_benchmark() { # requests pipeline distribution -> "rps p50 p99" (ms)
    local line
    line=$(timeout $((SECS * 4 + 60)) redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$REDIS_CLIENTS" \
        -P "$2" -r "$DRAW_RANGE" -n "$1" --csv \
        EVALSHA "$REDIS_SHA" 1 res:seq __rand_int__ "$3" "$SKUS" __rand_int__ | tail -1 | tr -d '"') || return 1
    # CSV columns: test, rps, avg, min, p50, p95, p99, max (latencies in ms).
    local rps p50 p99
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"
    [[ $rps =~ ^[0-9.]+$ ]] || return 1
    echo "${rps%.*} $p50 $p99"
}

redis_run() { # persistence(none|everysec|always) pipeline distribution
    local persistence=$1 pipeline=$2 distribution=$3
    local draw=uniform
    [ "$distribution" = zipf ] && draw=hot
    local variant="$draw, P$pipeline"
    local durability_label
    case "$persistence" in
        none) durability_label="no persistence" ;;
        *) durability_label="AOF $persistence" ;;
    esac
    wanted redis "$variant" "$durability_label" || return 0
    variant_begin
    local persistence_rank=${persistence/always/1}
    persistence_rank=${persistence_rank/everysec/2}
    SORT_KEY=$(printf '2 %s %02d %s' "${persistence_rank/none/3}" "$pipeline" "$distribution")

    # Each variant loads a fresh data set and only then turns AOF on. Turning it on
    # rewrites the file, so wait until that rewrite is done.
    "${REDIS[@]}" config set appendonly no >/dev/null
    "${REDIS[@]}" flushall >/dev/null
    "${REDIS[@]}" eval "for i = 0, ARGV[1] - 1 do redis.call('SET', 'sku:' .. i, ARGV[2]) end" 0 \
        "$SKUS" "$ON_HAND" >/dev/null
    if [ "$persistence" != none ]; then
        "${REDIS[@]}" config set appendfsync "$persistence" >/dev/null
        "${REDIS[@]}" config set appendonly yes >/dev/null
        local done=0
        for _ in $(seq 600); do
            if ! "${REDIS[@]}" info persistence | grep -Eq 'aof_rewrite_(in_progress|scheduled):1'; then
                done=1
                break
            fi
            sleep 0.1
        done
        ((done)) || die "Redis did not finish its AOF rewrite within 60 s"
    fi
    REDIS_SHA=$("${REDIS[@]}" script load "$(cat "$HERE/reserve.lua")")

    # A warm-up measures the rate, from which the measured run's request count is set
    # so that it lasts about SECS seconds.
    local rps p50 p99
    if ! read -r rps _ _ < <(redis_benchmark $((40000 + 10000 * pipeline)) "$pipeline" "$distribution"); then
        variant_end
        row redis "$variant" "$durability_label" - - - "void: redis-benchmark failed"
        return 0
    fi
    local requests=$((rps * SECS))
    local before
    before=$("${REDIS[@]}" get res:seq)
    record_command "redis-benchmark -h 127.0.0.1 -p $REDIS_PORT -c $REDIS_CLIENTS -P $pipeline -r $DRAW_RANGE -n $requests --csv EVALSHA $REDIS_SHA 1 res:seq __rand_int__ $distribution $SKUS __rand_int__   # appendonly $([ "$persistence" = none ] && echo no || echo "yes, appendfsync $persistence")"
    if ! read -r rps p50 p99 < <(redis_benchmark "$requests" "$pipeline" "$distribution"); then
        variant_end
        row redis "$variant" "$durability_label" - - - "void: redis-benchmark failed or timed out"
        return 0
    fi
    variant_end
    local recorded=$(($("${REDIS[@]}" get res:seq) - before))
    # Leave Redis empty and without persistence while the other variants run.
    "${REDIS[@]}" config set appendonly no >/dev/null
    "${REDIS[@]}" flushall >/dev/null
    # With pipelining, redis-benchmark may send up to one pipeline per client past -n.
    local check="ok: $recorded reserved"
    if ((recorded < requests || recorded > requests + REDIS_CLIENTS * pipeline)); then
        check="void: $recorded reserved of $requests"
    fi
    row redis "$variant" "$durability_label" "$rps" "$p50" "$p99" "$check"
}

# --- PostgreSQL -----------------------------------------------------------------------

pg_run() { # synchronous_commit(off|on) distribution
    local synchronous_commit=$1 distribution=$2
    local draw=uniform zipf=0
    [ "$distribution" = zipf ] && draw=hot zipf=1
    local durability_label="synchronous_commit $synchronous_commit"
    wanted postgres "$draw" "$durability_label" || return 0
    variant_begin
    SORT_KEY="3 ${synchronous_commit/on/1} $distribution"

    "${PSQL[@]}" -v skus="$SKUS" -v on_hand="$ON_HAND" -f "$HERE/schema.sql" >/dev/null
    rm -f "$WORK/pglog"/tx.*
    local pgbench=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j "$PG_THREADS"
        -T "$SECS" -D skus="$SKUS" -D zipf="$zipf" -f "$HERE/reserve.sql" -l --log-prefix="$WORK/pglog/tx" postgres)
    local shown=${pgbench[*]/#$REPO\//}
    record_command "PGOPTIONS='-c synchronous_commit=$synchronous_commit' ${shown//$WORK/WORK}"
    if ! PGOPTIONS="-c synchronous_commit=$synchronous_commit" timeout $((SECS + 120)) "${pgbench[@]}" \
        >"$WORK/pgbench.log" 2>&1; then
        say "pgbench failed: $(tail -5 "$WORK/pgbench.log")"
        variant_end
        row postgres "$draw" "$durability_label" - - - "void: pgbench failed"
        return 0
    fi
    variant_end

    local tps transactions latency recorded
    tps=$(awk '/^tps/ { printf "%.0f", $3 }' "$WORK/pgbench.log")
    transactions=$(awk -F': ' '/actually processed/ { split($2, parts, "/"); print parts[1] }' "$WORK/pgbench.log")
    # The third field of pgbench's per-transaction log is the latency in microseconds.
    latency=$(cat "$WORK/pglog"/tx.* | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.3f %.3f", v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000 }')
    rm -f "$WORK/pglog"/tx.*
    recorded=$("${PSQL[@]}" -Atc 'SELECT count(*) FROM reservation')
    # Dropping the tables keeps autovacuum from cleaning them up during the next variant.
    "${PSQL[@]}" -c 'DROP TABLE reservation, sku'
    local check="ok: $recorded reserved"
    if [ "$recorded" != "$transactions" ]; then
        check="void: $recorded reserved of $transactions"
    fi
    # shellcheck disable=SC2086 # $latency is "p50 p99"
    row postgres "$draw" "$durability_label" "$tps" $latency "$check"
}

# --- Runs -----------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OTHER_CPU=-
say "each variant runs ${SECS}s; results go to $RESULTS"

# The variants that are compared run close together in time, so that other work on
# the machine, which comes and goes, weighs on them alike. The table is sorted after.
for distribution in uniform zipf; do
    for batch in 1 16; do
        for durability in sync none; do
            promesa_run "$durability" "$batch" "$distribution"
        done
        for persistence in always everysec none; do
            redis_run "$persistence" "$batch" "$distribution"
        done
        if ((batch == 1)); then
            for synchronous_commit in on off; do
                pg_run "$synchronous_commit" "$distribution"
            done
        fi
    done
done

sort -t $'\t' -k1,1 "$TABLE_ROWS" | cut -f2- >>"$TABLE"

# --- Ratios and the results file -------------------------------------------------------

# Prints the ops/s of the row "system|variant|durability" if its check is ok, else "-".
figure() {
    awk -F'|' -v key="$1|$2|$3" '$1 "|" $2 "|" $3 == key && $5 ~ /^ok/ { print $4; found = 1 } END { if (!found) print "-" }' "$FIGURES"
}

ratio_line() { # label promesa-variant redis-variant draw
    local promesa redis postgres best best_name
    promesa=$(figure promesa "$2" sync)
    redis=$(figure redis "$3" "AOF always")
    postgres=$(figure postgres "$4" "synchronous_commit on")
    best=$redis best_name="Redis AOF always $(cut -d' ' -f2 <<<"$3")"
    if [ "$postgres" != - ] && { [ "$best" = - ] || ((postgres > best)); }; then
        best=$postgres best_name="PostgreSQL synchronous_commit on"
    fi
    if [ "$promesa" = - ] || [ "$best" = - ]; then
        echo "- $1: not measured"
        return
    fi
    echo "- $1: Promesa sync $promesa ops/s, best durable peer $best_name $best ops/s:" \
        "$(awk -v a="$promesa" -v b="$best" 'BEGIN { printf "%.2f", a / b }')x"
}

RATIOS=$WORK/ratios.md
{
    for draw in uniform hot; do
        ratio_line "$draw, 16 per frame against pipelining 16" "$draw, 16 per frame" "$draw, P16" "$draw"
        ratio_line "$draw, 1 per frame against pipelining 1" "$draw, 1 per frame" "$draw, P1" "$draw"
    done
} >"$RATIOS"

COMMIT=$(git -C "$REPO" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO" --no-optional-locks diff --quiet HEAD 2>/dev/null; then
    COMMIT="$COMMIT with uncommitted changes"
fi
mkdir -p "$(dirname "$RESULTS")"
{
    echo "# Promesa, Redis and PostgreSQL side by side"
    echo
    echo "Started $STARTED UTC, took $((SECONDS - T0)) s."
    echo "Command: \`bench/side-by-side.sh${1:+ $1}\` with SECS=$SECS (seconds measured per variant)."
    echo
    echo "## Machine"
    echo
    echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "- memory: $(free -h | awk '/^Mem:/ { print $2 }'); kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- data folder of the three servers: $WORK_FS on $WORK_DEVICE (a temporary folder under $WORK_PARENT)"
    echo "- load average (1, 5, 15 min) before the runs: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- clients and servers share the same cores"
    echo
    echo "## Versions"
    echo
    echo "- $("$SERVER_BIN" --version), commit $COMMIT; $(rustc --version 2>/dev/null || echo 'rustc unknown')"
    echo "  binaries $BUILT"
    echo "- $(redis-server --version | cut -d' ' -f1-3)"
    echo "- $("${PSQL[@]}" -Atc 'SELECT version()' | cut -d, -f1)"
    echo
    echo "## Workload"
    echo
    echo "- $SKUS SKUs at one location, $ON_HAND units of each at the start of every variant, so"
    echo "  nothing runs out: the hot draw's first SKU takes about 6% of the reservations at 3 units on"
    echo "  average, about $((ON_HAND / 18 * 100 / 1000000))M reservations in all before it is empty."
    echo "- One reservation: q units (1..5) of one SKU if it has them, and a record of it. Uniform and"
    echo "  hot (Zipf, exponent 1) draws, the same in all three systems."
    echo "- Promesa: promesa-loadgen --workload peer, $PROMESA_CONNECTIONS connections x $PROMESA_IN_FLIGHT frames"
    echo "  in flight, 1 s warm-up; each variant on a fresh server and data folder."
    echo "- Redis: EVALSHA of bench/side-by-side/reserve.lua, redis-benchmark with $REDIS_CLIENTS clients,"
    echo "  pipelining P1 or P16, fresh data set per variant."
    echo "- PostgreSQL: pgbench -c $PG_CLIENTS -j $PG_THREADS with bench/side-by-side/reserve.sql (conditional"
    echo "  UPDATE and INSERT in one statement), tables made afresh per variant, fsync on."
    echo "- Latency: per request, as each client measures it. Promesa: the round trip of the"
    echo "  request's frame. Redis with P16: includes the wait for the other commands of the pipeline."
    echo
    echo "## Results"
    echo
    cat "$TABLE"
    echo
    echo "Durable rows (acknowledged only once on disk): Promesa sync, Redis AOF always, PostgreSQL"
    echo "synchronous_commit on. Promesa none and Redis without persistence are NOT durable: a crash"
    echo "loses acknowledged reservations. Redis AOF everysec and PostgreSQL synchronous_commit off"
    echo "can lose about the last second. A void row refused or lost reservations, or failed."
    echo
    echo "Ratios, Promesa (durability sync) over the best durable peer:"
    echo
    cat "$RATIOS"
    echo
    echo "CPU that the rest of the machine (other processes, and kernel threads such as the"
    echo "disk write-back for the servers) used during each variant, in cores of $(nproc):"
    echo
    sort -t $'\t' -k1,1 "$OTHER_CPU_LIST" | cut -f2-
    echo
    echo "## Exact commands"
    echo
    echo "WORK is the temporary folder, DATA the variant's fresh Promesa data folder in it."
    echo "Before each Redis run: FLUSHALL, SET of every SKU, then CONFIG SET appendfsync and"
    echo "appendonly; the script's sha is SCRIPT LOAD of bench/side-by-side/reserve.lua. Before each"
    echo "PostgreSQL run: psql -f bench/side-by-side/schema.sql."
    echo
    echo '```'
    cat "$COMMANDS"
    echo '```'
} >"$RESULTS"

echo
cat "$TABLE"
echo
cat "$RATIOS"
echo
say "wrote $RESULTS ($((SECONDS - T0)) s)"
