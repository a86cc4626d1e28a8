#!/usr/bin/env bash
# latch's load benchmark. Starts the release server on SQLite and/or PostgreSQL and measures,
# with wrk (32 connections, 10 s after a 3 s warm-up):
#   W0 ceiling    GET /login: the same server on a page that reads and writes no session row
#                 (since the hardening it seals a CSRF cookie for each cookieless client)
#   W1 read       GET /user with one of SESSIONS (1,000) session cookies, rotating
#   W2 write      GET / (page-view counter) with rotating cookies
#   W3 create     GET /user/x without a cookie: one new session per request
#   W4 anonymous  GET /user without a cookie
# and reports requests/s, ratio to W0, p50/p99 latency, errors, the server's peak RSS, rows
# written during W1, and rows created vs. answered during W3.
#
#   bench/run.sh [sqlite|postgres|pgbouncer|all|A+B...] [purge|purge-only]
#
# Backends: `sqlite`; `postgres` (a new database on the local Postgres, connected directly);
# `pgbouncer` (the same, but latch's DATABASE_URL leads through a PgBouncer that the script
# starts for the run, and ROCKET_DATABASE_DIRECT_URL, past it, carries latch's migrations and
# its cache's listener); `all` (sqlite+postgres, as before there was a pgbouncer backend).
# Several joined with `+` run in that order in one invocation: `postgres+pgbouncer` measures the
# direct connection and the pooler back to back, and ends with a table of the two side by side
# (pgbouncer ÷ postgres for each workload). PgBouncer (Debian's /usr/sbin/pgbouncer, installed
# with apt-get if missing) is started for each measured run in a temporary folder of its own on
# a free port, as the `postgres` user when the script runs as root (it refuses root), and
# stopped after it: POOL_MODE (transaction; `session` for its session mode), POOL_SIZE (20:
# default_pool_size, server connections per database and role), max_client_conn 500, trust
# auth for the roles postgres and root; latch connects through it as postgres. In transaction
# mode the tower-sessions peer is not measured through it: its sqlx store prepares named
# statements, which PgBouncer 1.18 cannot carry there. The helper's own queries (row snapshots
# and counts) and, with `purge`, the migrations and the seeding go to Postgres directly.
#
# `purge` adds the purge-at-scale run (`purge-only` runs just that): 1,000,000 expired rows, W1
# running while one purge pass works through them, in batches of PURGE_BATCH (1000). Env: DURATION (10), WARMUP (3), CONNECTIONS (32), PGURL (admin URL,
# default postgres://postgres@127.0.0.1:5432/postgres), PURGE_RUN (60: seconds of W1 around the
# purge pass), SERVER_ENV (one extra VAR=value for the server, e.g.
# SERVER_ENV='ROCKET_SESSION={postgres_cache=true}'), THREADS (1: wrk's threads), LATCH_BIN
# (target/release/latch, or $CARGO_TARGET_DIR/release/latch when that is set: another latch
# binary to measure, e.g. an older commit's). Needs wrk, python3, psql and openssl (and
# pgbouncer for that backend); wrk, psql and pgbouncer are installed with apt-get if missing.
#
# Peers: APPS names the servers measured, in order (default `latch`). `APPS="latch
# tower-sessions ceiling"` measures beside latch the peers in bench/peers/ (built here): the
# same routes on axum + tower-sessions with its sqlx store, and on Rocket with the data in a
# private cookie and no store at all (the ceiling; it has no database, so it runs once per
# round). ROUNDS (1) repeats the whole run, rotating the order of the apps each round, and the
# summary at the end gives each workload's median req/s over the rounds and latch's ratios.
# SESSIONS (1000) is how many sessions are created before the cookie workloads.
set -euo pipefail
cd "$(dirname "$0")/.."

which_backends=${1:-all}
with_purge=${2:-}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-8190}
PURGE_BATCH=${PURGE_BATCH:-1000}
POOL_MODE=${POOL_MODE:-transaction}
POOL_SIZE=${POOL_SIZE:-20}
BASE="http://127.0.0.1:$PORT"
PGBOUNCER=/usr/sbin/pgbouncer

# The backends, in the order they run.
case $which_backends in
  all) backends=(sqlite postgres) ;;
  *) IFS=+ read -r -a backends <<<"$which_backends" ;;
esac
for backend in "${backends[@]}"; do
  case $backend in
    sqlite | postgres | pgbouncer) ;;
    *) echo "unknown backend: $backend (sqlite, postgres, pgbouncer, all, or several joined with +)" >&2; exit 1 ;;
  esac
done
has_backend() { case " ${backends[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
with_pgbouncer=
has_backend pgbouncer && with_pgbouncer=yes

APPS=${APPS:-latch}
ROUNDS=${ROUNDS:-1}
SESSIONS=${SESSIONS:-1000}
PEERS_TARGET=target/peers

# What the run needs, installed with apt-get where it is missing.
source bench/need.sh
need wrk wrk
need psql postgresql-client
need openssl openssl
[ -n "$with_pgbouncer" ] && need "$PGBOUNCER" pgbouncer
cargo build --release --quiet
for app in $APPS; do
  case $app in
    latch) ;;
    tower-sessions | ceiling)
      CARGO_TARGET_DIR=$PEERS_TARGET cargo build --release --quiet --locked \
        --manifest-path "bench/peers/$app/Cargo.toml" ;;
    *) echo "unknown app in APPS: $app (latch, tower-sessions, ceiling)" >&2; exit 1 ;;
  esac
done
# Dirty pages left by the build (or by seeding) would be flushed by the first fsync of a measured
# run, which then waits for all of them: write them out first.
sync
LATCH_BIN=${LATCH_BIN:-${CARGO_TARGET_DIR:-target}/release/latch}
BIN=$LATCH_BIN
WORK=$(mktemp -d)
SERVER_PID=
BOUNCER_PID=
BOUNCER_DIR=
DATABASES=()
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  # The pooler first: its server connections would keep the databases from being dropped.
  stop_pgbouncer
  # A purge run leaves a million dead rows behind: dropped, they cannot draw autovacuum into a
  # later run's measurements.
  for name in "${DATABASES[@]}"; do
    psql "$PGURL" -qc "drop database if exists $name" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_server() { # database_url [extra env...]
  local url=$1; shift
  env ROCKET_PROFILE=release ROCKET_SECRET_KEY="$(openssl rand -base64 32)" \
    ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT="$PORT" ROCKET_LOG_LEVEL=critical \
    DATABASE_URL="$url" ${SERVER_ENV:+"$SERVER_ENV"} "$@" "$BIN" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_pgbouncer -> BOUNCER_PORT: a PgBouncer in front of the local Postgres (PGURL's host and
# port), in POOL_MODE, in a temporary folder of its own. As root it runs as `postgres` (it
# refuses root), which must read the folder and write its log there; setpriv execs it, so
# BOUNCER_PID is PgBouncer itself.
start_pgbouncer() {
  local pg_host pg_port
  read -r pg_host pg_port < <(python3 -c 'import sys, urllib.parse; u = urllib.parse.urlparse(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or 5432)' "$PGURL")
  BOUNCER_DIR=$(mktemp -d)
  BOUNCER_PORT=$(free_port)
  printf '"postgres" ""\n"root" ""\n' >"$BOUNCER_DIR/users.txt"
  cat >"$BOUNCER_DIR/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $BOUNCER_DIR/users.txt
pool_mode = $POOL_MODE
max_client_conn = 500
default_pool_size = $POOL_SIZE
ignore_startup_parameters = extra_float_digits,options
logfile = $BOUNCER_DIR/pgbouncer.log
INI
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$BOUNCER_DIR"
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBOUNCER" "$BOUNCER_DIR/pgbouncer.ini" >/dev/null 2>&1 &
  else
    "$PGBOUNCER" "$BOUNCER_DIR/pgbouncer.ini" >/dev/null 2>&1 &
  fi
  BOUNCER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$BOUNCER_PORT") 2>/dev/null && return 0
    kill -0 "$BOUNCER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "pgbouncer did not start:" >&2; cat "$BOUNCER_DIR/pgbouncer.log" >&2 2>/dev/null || true; exit 1
}

stop_pgbouncer() {
  if [ -n "$BOUNCER_PID" ]; then kill "$BOUNCER_PID" 2>/dev/null || true; wait "$BOUNCER_PID" 2>/dev/null || true; fi
  BOUNCER_PID=
  if [ -n "$BOUNCER_DIR" ]; then rm -rf "$BOUNCER_DIR"; fi
  BOUNCER_DIR=
}

# new_database PREFIX BACKEND -> DB_URL (the helper's, always direct), SERVER_URL (latch's) and
# SERVER_DIRECT (its extra environment: behind the pooler, the direct URL), for a fresh database.
new_database() {
  local prefix=$1 backend=$2
  SERVER_DIRECT=()
  if [ "$backend" = sqlite ]; then
    DB_URL="sqlite://$WORK/$prefix.db"
    SERVER_URL=$DB_URL
    return
  fi
  local name="latch_${prefix}_$$"
  psql "$PGURL" -qc "drop database if exists $name" -c "create database $name" >/dev/null 2>&1
  DATABASES+=("$name")
  DB_URL="${PGURL%/*}/$name"
  SERVER_URL=$DB_URL
  if [ "$backend" = pgbouncer ]; then
    start_pgbouncer
    SERVER_URL="postgres://postgres@127.0.0.1:$BOUNCER_PORT/$name"
    SERVER_DIRECT=("ROCKET_DATABASE_DIRECT_URL=$DB_URL")
  fi
}

pooler() {
  echo "latch through PgBouncer $("$PGBOUNCER" --version 2>/dev/null | awk 'NR == 1 { print $2 }'), $POOL_MODE mode, pool size $POOL_SIZE; direct URL for migrations and listener"
}

heading() { # backend
  case $1 in
    pgbouncer) echo "pgbouncer ($(pooler))" ;;
    postgres) if [ -n "$with_pgbouncer" ]; then echo "postgres (direct)"; else echo postgres; fi ;;
    *) echo "$1" ;;
  esac
}

peak_rss_mib() {
  awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"
}

# wrk_json PATH [COOKIES_FILE] -> the JSON summary line of one measured run (after a warm-up)
wrk_json() {
  local path=$1 cookies=${2:-}
  sync
  COOKIES=$cookies wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/wrk.lua "$BASE$path" >/dev/null
  COOKIES=$cookies wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/wrk.lua "$BASE$path" \
    | sed -n 's/^JSON //p'
}

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

row() { # name json w0_rps extra
  local name=$1 json=$2 w0=$3 extra=${4:-}
  python3 - "$name" "$json" "$w0" "$(peak_rss_mib)" "$extra" <<'PY'
import json, sys
name, data, w0, rss, extra = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3] or 0), sys.argv[4], sys.argv[5]
rps = data["requests"] / (data["duration_us"] / 1e6)
ratio = f"{rps / w0:.2f}" if w0 else "1.00"
errors = data["errors"] + data["non_2xx_3xx"]
print(f"| {name} | {rps:,.0f} | {ratio} | {data['p50_us'] / 1000:.2f} | {data['p99_us'] / 1000:.2f} | {errors} | {rss} | {extra} |")
PY
}

rps_of() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['requests'] / (d['duration_us'] / 1e6))" "$1"; }

binary_of() { # app
  case $1 in
    latch) echo "$LATCH_BIN" ;;
    *) echo "$PEERS_TARGET/release/peer-$1" ;;
  esac
}

# record ROUND BACKEND APP WORKLOAD JSON: one line of the summary's input.
record() {
  python3 -c "import json,sys; d=json.loads(sys.argv[5]); print(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], d['requests'] / (d['duration_us'] / 1e6), d['p99_us'] / 1000)" \
    "$@" >>"$WORK/results"
}

bench_backend() { # sqlite|postgres|pgbouncer [app] [round]
  local backend=$1 app=${2:-latch} round=${3:-1} url
  BIN=$(binary_of "$app")
  # Each backend its own database: postgres and pgbouncer in one run do not share rows.
  new_database "bench_$backend" "$backend"
  url=$DB_URL
  start_server "$SERVER_URL" "${SERVER_DIRECT[@]}"
  python3 bench/db.py cookies "$BASE" "$SESSIONS" "$WORK/cookies"
  # The ceiling keeps no rows to count.
  local counts=yes
  [ "$app" = ceiling ] && counts=

  echo
  if [ "$app" = latch ]; then echo "### $(heading "$backend")"; else echo "### $(heading "$backend"): $app"; fi
  [ "$ROUNDS" -gt 1 ] && echo "(round $round of $ROUNDS)"
  echo
  echo "| workload | req/s | × W0 | p50 ms | p99 ms | errors | peak RSS MiB | notes |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  local w0 w1 w2 w3 w4 before after written rows_before rows_after answered
  w0=$(wrk_json /login)
  local w0_rps; w0_rps=$(rps_of "$w0")
  row "W0 ceiling (GET /login)" "$w0" "" ""
  record "$round" "$backend" "$app" W0 "$w0"

  # Anonymous before the writes, so the database's own clean-up after W3 cannot weigh on it.
  w4=$(wrk_json /user)
  row "W4 anonymous (GET /user, no cookie)" "$w4" "$w0_rps" ""
  record "$round" "$backend" "$app" W4 "$w4"

  [ -n "$counts" ] && python3 bench/db.py snapshot "$url" >"$WORK/before.json"
  w1=$(wrk_json /user "$WORK/cookies")
  written=n/a
  if [ -n "$counts" ]; then
    python3 bench/db.py snapshot "$url" >"$WORK/after.json"
    written=$(python3 bench/db.py diff "$WORK/before.json" "$WORK/after.json")
  fi
  row "W1 read (GET /user, $SESSIONS cookies)" "$w1" "$w0_rps" "rows written: $written"
  record "$round" "$backend" "$app" W1 "$w1"

  w2=$(wrk_json / "$WORK/cookies")
  row "W2 write (GET /, $SESSIONS cookies)" "$w2" "$w0_rps" ""
  record "$round" "$backend" "$app" W2 "$w2"

  # Only the measured run is counted: the warm-up creates sessions too.
  sync
  COOKIES= wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/wrk.lua "$BASE/user/x" >/dev/null
  rows_before=0
  [ -n "$counts" ] && rows_before=$(python3 bench/db.py count "$url")
  w3=$(COOKIES= wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/wrk.lua "$BASE/user/x" | sed -n 's/^JSON //p')
  answered=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['requests'] - d['non_2xx_3xx'])" "$w3")
  local created=n/a
  if [ -n "$counts" ]; then
    rows_after=$(python3 bench/db.py count "$url")
    created=$((rows_after - rows_before))
  fi
  row "W3 create (GET /user/x, no cookie)" "$w3" "$w0_rps" "answered $answered, rows created $created"
  record "$round" "$backend" "$app" W3 "$w3"
  stop_server
  stop_pgbouncer
}

# The medians over the rounds, side by side, with latch's ratios to each other app.
summary() {
  [ -s "$WORK/results" ] || return 0
  python3 - "$WORK/results" "$APPS" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    _, backend, app, workload, rps, p99 = line.split()
    runs[backend, app, workload].append((float(rps), float(p99)))
apps = sys.argv[2].split()
others = [app for app in apps if app != "latch"]
ceiling = [key for key in runs if key[1] == "ceiling"]
for backend in ("sqlite", "postgres", "pgbouncer"):
    present = [app for app in apps if any(k[0] == backend and k[1] == app for k in runs)]
    if "latch" not in present:
        continue
    def median(app, workload):
        # The ceiling has no database: it ran once a round, under the first backend.
        keys = [k for k in runs if k[1] == app and k[2] == workload and (k[0] == backend or app == "ceiling")]
        values = [v for k in keys for v in runs[k]]
        return (statistics.median(v[0] for v in values), max(v[1] for v in values)) if values else None
    shown = [app for app in apps if app == "latch" or median(app, "W1")]
    print(f"\n### summary: {backend}, median req/s over the rounds (max p99 ms)\n")
    print("| workload | " + " | ".join(shown) + " | " + " | ".join(f"latch ÷ {a}" for a in shown if a != "latch") + " |")
    print("| --- |" + " ---: |" * (2 * len(shown) - 1))
    for workload in ("W0", "W1", "W2", "W3", "W4"):
        cells, ratios = [], []
        latch = median("latch", workload)
        for app in shown:
            m = median(app, workload)
            cells.append(f"{m[0]:,.0f} ({m[1]:.1f})" if m else "–")
            if app != "latch":
                ratios.append(f"{latch[0] / m[0]:.2f}" if m and latch else "–")
        print(f"| {workload} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
PY
}

# latch direct and through the pooler, side by side (medians over the rounds).
pooler_summary() {
  [ -s "$WORK/results" ] || return 0
  python3 - "$WORK/results" "$(pooler)" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    round_, backend, app, workload, rps, p99 = line.split()
    if app == "latch":
        runs[backend, workload].append((float(rps), float(p99)))
rounds = max(len(v) for v in runs.values())
print(f"\n### direct against the pooler: latch, {'median ' if rounds > 1 else ''}req/s{f' over {rounds} rounds' if rounds > 1 else ''} (p99 ms{', max' if rounds > 1 else ''})\n")
print(f"postgres: direct; pgbouncer: {sys.argv[2]}\n")
print("| workload | postgres (direct) | pgbouncer | pgbouncer ÷ postgres |")
print("| --- | ---: | ---: | ---: |")
for workload in ("W0", "W1", "W2", "W3", "W4"):
    cells = []
    for backend in ("postgres", "pgbouncer"):
        values = runs.get((backend, workload))
        cells.append((statistics.median(v[0] for v in values), max(v[1] for v in values)) if values else None)
    ratio = f"{cells[1][0] / cells[0][0]:.2f}" if all(cells) else "–"
    shown = [f"{c[0]:,.0f} ({c[1]:.1f})" if c else "–" for c in cells]
    print(f"| {workload} | {shown[0]} | {shown[1]} | {ratio} |")
PY
}

bench_purge() { # sqlite|postgres|pgbouncer
  local backend=$1 url
  # Behind the pooler, only the server's own work goes through it: migrations and seeding are
  # direct.
  new_database "purge_$backend" "$backend"
  url=$DB_URL
  DATABASE_URL="$url" "$BIN" migrate >/dev/null
  python3 bench/db.py seed-expired "$url" 1000000
  # Settle the seeding's after-effects (autovacuum, checkpoint, dirty pages) before measuring.
  if [ "$backend" != sqlite ]; then psql "$url" -qc "vacuum analyze sessions" -c "checkpoint"; fi
  sync
  # W1 alone first, on the same table (the purge has not started yet); the first pass starts
  # 30 s after launch, inside a second W1 run that lasts until the pass is over (polled every
  # 0.5 s with a single index probe, by one process on one connection: one process per poll
  # took a sixth of the CPU away from the run it measured). Measuring "alone" after the pass
  # instead would catch Postgres's autovacuum of a million dead rows.
  start_server "$SERVER_URL" "${SERVER_DIRECT[@]}" ROCKET_SESSION="{purge_interval=30,purge_batch_size=$PURGE_BATCH}"
  local first; first=$(python3 -c 'import time; print(time.time() + 30)')
  python3 bench/db.py cookies "$BASE" 1000 "$WORK/cookies"
  local before; before=$(wrk_json /user "$WORK/cookies")
  sleep "$(python3 -c "import time; print(max(0, $first - 1 - time.time()))")"
  COOKIES="$WORK/cookies" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${PURGE_RUN:-60}s" -s bench/wrk.lua \
    "$BASE/user" | sed -n 's/^JSON //p' >"$WORK/during.json" &
  local wrk_pid=$! last
  last=$(python3 bench/db.py wait-purged "$url" 240)
  wait "$wrk_pid"
  echo
  echo "### purge at scale: $(heading "$backend")"
  echo
  echo "1,000,000 expired rows, batches of $PURGE_BATCH; W1 alone, then W1 over a ${PURGE_RUN:-60} s run from 1 s before the pass:"
  echo
  echo "| W1 | req/s | p50 ms | p99 ms |"
  echo "| --- | ---: | ---: | ---: |"
  python3 - "$before" "$(cat "$WORK/during.json")" "$first" "${last:-0}" <<'PY'
import json, sys
for label, raw in (("alone", sys.argv[1]), ("with the purge pass", sys.argv[2])):
    d = json.loads(raw)
    print(f"| {label} | {d['requests'] / (d['duration_us'] / 1e6):,.0f} | {d['p50_us'] / 1000:.2f} | {d['p99_us'] / 1000:.2f} |")
first, last = float(sys.argv[3]), float(sys.argv[4])
print(f"\npass duration (from its start, 30 s after launch, to the last expired row gone; polled every 0.5 s): {last - first:.1f} s" if first and last else "\npass not finished within the run")
PY
  stop_server
  stop_pgbouncer
}

echo "## $(date -u +%Y-%m-%d) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s after ${WARMUP}s warm-up"
read -r -a apps <<<"$APPS"
for round in $(seq 1 "$ROUNDS"); do
  # Each round starts one app further along, so no app always runs first or last.
  shift_by=$(( (round - 1) % ${#apps[@]} ))
  order=("${apps[@]:shift_by}" "${apps[@]:0:shift_by}")
  ceiling_done=
  for backend in "${backends[@]}"; do
    if [ "$with_purge" != purge-only ]; then
      for app in "${order[@]}"; do
        if [ "$app" = ceiling ]; then
          [ -n "$ceiling_done" ] && continue
          ceiling_done=yes
        fi
        if [ "$backend" = pgbouncer ] && [ "$app" = tower-sessions ] && [ "$POOL_MODE" = transaction ]; then
          [ "$round" = 1 ] && printf '\n(pgbouncer: tower-sessions not measured; its sqlx store prepares named statements, which PgBouncer cannot carry in transaction mode)\n'
          continue
        fi
        bench_backend "$backend" "$app" "$round"
      done
    fi
    if [ "$round" = 1 ] && { [ "$with_purge" = purge ] || [ "$with_purge" = purge-only ]; }; then
      BIN=$LATCH_BIN bench_purge "$backend"
    fi
  done
done
[ "$APPS" = latch ] && [ "$ROUNDS" = 1 ] || summary
if has_backend postgres && has_backend pgbouncer; then pooler_summary; fi
