#!/usr/bin/env bash
# Instructions per request, counted by callgrind: deterministic where wall-clock on a shared
# virtual machine is not, so a change to the request path shows its cost in one run.
#
#   bench/instructions.sh [sqlite|postgres|all]
#
# For each backend it creates SESSIONS (100,000) sessions with the release server running
# normally, stops it, and starts it again on the same database under
# `valgrind --tool=callgrind --instr-atstart=no` (same secret key, so the cookies still open).
# Then, per workload: a 3 s warm-up, `callgrind_control -i on`, `wrk -t1 -c4` for DURATION
# (10) seconds, `callgrind_control -i off`, and the instructions counted divided by the
# requests wrk made:
#   W4 `GET /user` without a cookie, W1 `GET /user` with the session cookies (rotating),
#   W2 `GET /` (the counter), W3 `GET /user/x` without a cookie (a new session each time).
# W1 runs twice: on 1,000 of the sessions, which the cache holds after the warm-up (hit), and
# on all of them with the cache off (miss: every read is a query), in a server of its own.
# Every server runs with `touch_interval = 900`, so no measured read is due a touch. Valgrind runs one thread at a time, so
# the thread switches that dominate a real miss do not show here: these count the work only.
# ANNOTATE=1 also prints `callgrind_annotate --inclusive=yes` of the W1 miss run.
# Env: SESSIONS, DURATION, PGURL (admin URL). Needs valgrind, wrk, python3, psql.
set -euo pipefail
cd "$(dirname "$0")/.."

which_backends=${1:-all}
SESSIONS=${SESSIONS:-100000}
DURATION=${DURATION:-10}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-8191}
BASE="http://127.0.0.1:$PORT"
# Under valgrind a run takes minutes: with the default touch interval (60 s) the reads would
# become touches part-way. A longer one keeps every measured read a read.
FRESH="touch_interval=900"
# What the run needs, installed with apt-get where it is missing.
source bench/need.sh
need valgrind valgrind
need callgrind_control valgrind
need wrk wrk
need psql postgresql-client
cargo build --release --quiet
BIN=${LATCH_BIN:-target/release/latch}
WORK=$(mktemp -d)
KEY=$(openssl rand -base64 32)
SERVER_PID=
DATABASES=()
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  for name in "${DATABASES[@]}"; do psql "$PGURL" -qc "drop database if exists $name" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # url session_settings [valgrind...]
  local url=$1 settings=$2; shift 2
  env ROCKET_PROFILE=release ROCKET_SECRET_KEY="$KEY" ROCKET_ADDRESS=127.0.0.1 \
    ROCKET_PORT="$PORT" ROCKET_LOG_LEVEL=critical ROCKET_SESSION="$settings" \
    DATABASE_URL="$url" "$@" "$BIN" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# count NAME PATH [COOKIES]: one measured workload on the server under callgrind
count() {
  local name=$1 path=$2 cookies=${3:-}
  COOKIES=$cookies wrk -t1 -c4 -d3s -s bench/wrk.lua "$BASE$path" >/dev/null
  callgrind_control -z "$SERVER_PID" >/dev/null
  callgrind_control -i on "$SERVER_PID" >/dev/null
  local json
  json=$(COOKIES=$cookies wrk -t1 -c4 -d"${DURATION}s" -s bench/wrk.lua "$BASE$path" | sed -n 's/^JSON //p')
  callgrind_control -i off "$SERVER_PID" >/dev/null
  callgrind_control -d "$name" "$SERVER_PID" >/dev/null
  sleep 1
  local file; file=$(ls -t "$WORK"/callgrind.out.* | head -1)
  python3 - "$name" "$json" "$file" <<'PY'
import json, re, sys
name, d, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
total = next(int(m.group(1)) for line in open(path) if (m := re.match(r"totals: (\d+)", line)))
errors = d["errors"] + d["non_2xx_3xx"]
print(f"| {name} | {total / d['requests']:,.0f} | {d['requests']:,} | {errors} |")
PY
  [ "${ANNOTATE:-}" = 1 ] && [ "$name" = W1-miss ] && callgrind_annotate --inclusive=yes "$file" | head -60
  return 0
}

measure() { # backend
  local backend=$1 url
  if [ "$backend" = sqlite ]; then
    url="sqlite://$WORK/latch.db"
  else
    local name="latch_instr_$$"
    psql "$PGURL" -qc "drop database if exists $name" -c "create database $name" >/dev/null
    DATABASES+=("$name")
    url="${PGURL%/*}/$name"
  fi
  start "$url" "{$FRESH}"
  python3 bench/db.py cookies "$BASE" "$SESSIONS" "$WORK/cookies"
  stop
  local grind=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$WORK/callgrind.out.%p")
  echo
  echo "### $backend, $SESSIONS sessions: instructions per request"
  echo
  echo "| workload | instructions | requests | errors |"
  echo "| --- | ---: | ---: | ---: |"
  # The hit: the last 1,000 sessions made, which the warm-up reads into the (default) cache. Every
  # request still opens a cookie, hashes the ID and finds it among all SESSIONS.
  tail -1000 "$WORK/cookies" >"$WORK/hot"
  start "$url" "{$FRESH}" "${grind[@]}"
  count W4 /user
  count W1-hit /user "$WORK/hot"
  count W2 / "$WORK/cookies"
  count W3 /user/x
  stop
  start "$url" "{$FRESH,cache_capacity=0}" "${grind[@]}"
  count W1-miss /user "$WORK/cookies"
  stop
}

for backend in sqlite postgres; do
  if [ "$which_backends" = all ] || [ "$which_backends" = "$backend" ]; then
    measure "$backend"
  fi
done
