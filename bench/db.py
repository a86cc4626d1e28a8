#!/usr/bin/env python3
"""Benchmark helper: talks to the app over HTTP and to its database directly.

  db.py cookies URL N FILE        create N sessions (GET /user/bench<i>), write their cookies to FILE
  db.py snapshot DATABASE_URL     print {hash: [version, expires_at]} of every session as JSON
  db.py diff BEFORE AFTER         how many sessions differ between two snapshots (JSON files)
  db.py count DATABASE_URL        number of rows in sessions
  db.py wait-purged DATABASE_URL SECONDS
                                  poll every 0.5 s until no row has expired; print the Unix time it
                                  saw that (nothing if SECONDS passed first)
  db.py seed-expired DATABASE_URL N   insert N already-expired sessions
"""
import concurrent.futures
import http.client
import json
import sqlite3
import subprocess
import sys
import time
import urllib.parse


def sqlite_path(url):
    return urllib.parse.urlparse(url.replace("sqlite:", "sqlite://", 1) if "://" not in url else url).path


def query(url, sql):
    """Rows of `sql` as lists of strings."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url), timeout=30) as db:
            return [[str(v) for v in row] for row in db.execute(sql)]
    out = subprocess.run(["psql", url, "-AtF", "\t", "-c", sql], check=True, capture_output=True, text=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def cookies(base, n, path, connections=16):
    """Creates the sessions over `connections` keep-alive connections at once: 100,000 of them
    one at a time would take longer than the touch interval, and W1 would measure touches."""
    host = urllib.parse.urlparse(base)
    values = [None] * n

    def create(start):
        conn = http.client.HTTPConnection(host.hostname, host.port)
        for i in range(start, n, connections):
            conn.request("GET", f"/user/bench{i}")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"GET /user/bench{i}: {response.status}")
            header = response.getheader("Set-Cookie") or ""
            values[i] = header.split(";", 1)[0].split("=", 1)[1]

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for done in [pool.submit(create, start) for start in range(connections)]:
            done.result()
    with open(path, "w") as f:
        f.write("\n".join(values) + "\n")


def snapshot(url):
    hex_hash = "hex(id_hash)" if url.startswith("sqlite") else "encode(id_hash, 'hex')"
    rows = query(url, f"select {hex_hash}, version, expires_at from sessions")
    print(json.dumps({r[0].lower(): [r[1], r[2]] for r in rows}))


def diff(before_path, after_path):
    before = json.load(open(before_path))
    after = json.load(open(after_path))
    print(sum(1 for k, v in after.items() if before.get(k) != v) + sum(1 for k in before if k not in after))


def wait_purged(url, seconds):
    """One process and one connection for the whole wait: a new process (and, on Postgres, a
    new backend) per poll took a sixth of the machine's CPU while the measured run went on."""
    deadline = time.time() + seconds
    probe = "select count(*) from (select 1 from sessions where expires_at <= {} limit 1) as t"
    if url.startswith("sqlite"):
        db = sqlite3.connect(sqlite_path(url), timeout=30)
        ask = lambda sql: db.execute(sql).fetchone()[0] == 0
    else:
        psql = subprocess.Popen(["psql", url, "-XAtq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def ask(sql):
            psql.stdin.write(sql + ";\n")
            psql.stdin.flush()
            return psql.stdout.readline().strip() == "0"
    while time.time() < deadline:
        time.sleep(0.5)
        if ask(probe.format(int(time.time() * 1000))):
            print(f"{time.time():.3f}")
            return


def seed_expired(url, n):
    now_ms = int(time.time() * 1000)
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url), timeout=30) as db:
            db.execute(
                "with recursive n(i) as (select 1 union all select i + 1 from n where i < ?) "
                "insert into sessions (id_hash, data, version, created_at, expires_at) "
                "select randomblob(32), '{}', 0, ?, ? - (i % 100000) from n",
                (n, now_ms - 7_200_000, now_ms - 1000),
            )
    else:
        query(url, "insert into sessions (id_hash, data, version, created_at, expires_at) "
                   f"select sha256(int8send(i) || random()::text::bytea), '{{}}', 0, {now_ms - 7_200_000}, "
                   f"{now_ms - 1000} - (i % 100000) from generate_series(1, {n}) as i")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "cookies":
        cookies(args[0], int(args[1]), args[2])
    elif command == "snapshot":
        snapshot(args[0])
    elif command == "diff":
        diff(args[0], args[1])
    elif command == "count":
        print(query(args[0], "select count(*) from sessions")[0][0])
    elif command == "wait-purged":
        wait_purged(args[0], float(args[1]))
    elif command == "seed-expired":
        seed_expired(args[0], int(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
