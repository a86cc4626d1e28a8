#!/usr/bin/env python3
"""Attack benchmark of the accounts step (/account/*) against a release `latch` binary.

  python3 bench/accounts.py --bin PATH [--backend sqlite|postgres|all]
                            [--pgurl postgres://postgres@127.0.0.1:5432/postgres] [--json FILE]

Python 3 standard library only. Every scenario gets a fresh server process on a free loopback
port and a fresh database (SQLite: a file in a temporary folder; Postgres: a database with a
random name made from the admin URL with psql, dropped at the end). Each simulated browser has
its own cookie jar and follows no redirect (a 303 is a result). In the bursts every thread first
fetches its form (and so its CSRF token and cookies), then all are released together by one
threading.Barrier; nothing sleeps between requests.

  A  wrong-password burst: `victim` registered; 30 browsers post a wrong password for it and one
     more, in the same burst, the right one.
  B  registration burst: 30 browsers register u0..u29; the `accounts` rows are counted after.
  C  unknown-user flood: 120 browsers sign in as nobody0..nobody119 (per-address limit raised to
     100000); the server's VmRSS sampled every 20 ms, and VmHWM at the end.
  D  sign-in latency: `ada` registered; 20 sequential sign-ins with the right password, each from
     a fresh browser, only the POST timed.

Statuses are only counted (401 a password checked and failed, 303 signed in or registered,
429 throttled, 503 refused for load, anything else under "other", errors when no answer came),
so the script works unchanged when the app's answers change.
"""
import argparse
import base64
import hashlib
import http.cookiejar
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HOST = "127.0.0.1"
TIMEOUT = 30  # seconds, for every request
STARTUP_TIMEOUT = 60  # seconds for the server to listen
BARRIER_TIMEOUT = 120  # seconds for every thread of a burst to have its form
# A fixed key (32 bytes, base64), so runs are alike; never a real deployment's.
SECRET_KEY = base64.b64encode(hashlib.sha256(b"latch accounts benchmark").digest()).decode()
PASSWORD = "correct horse battery"
WRONG_PASSWORD = "not the right one"
UNKNOWN_PASSWORD = "twelve-chars"  # 12 characters
assert len(UNKNOWN_PASSWORD) == 12
TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')

A_WRONG = 30
B_BROWSERS = 30
C_BROWSERS = 120
D_SIGN_INS = 20


# ---------------------------------------------------------------------------------------------
# Browsers


class LoopbackCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """The release profile marks cookies Secure; browsers treat loopback as a secure context
    and send them to http://127.0.0.1, and so does this jar (only to 127.0.0.1)."""

    def return_ok_secure(self, cookie, request):
        if urllib.parse.urlsplit(request.get_full_url()).hostname == HOST:
            return True
        return super().return_ok_secure(cookie, request)


class KeepEveryAnswer(urllib.request.HTTPErrorProcessor):
    """Every status is an answer: no exception for 4xx/5xx, and so no redirect followed."""

    def http_response(self, request, response):
        return response

    https_response = http_response


class Answer:
    __slots__ = ("status", "body", "headers", "error", "seconds")

    def __init__(self, status=None, body="", headers=None, error=None, seconds=0.0):
        self.status, self.body, self.headers = status, body, headers or {}
        self.error, self.seconds = error, seconds

    def key(self):
        return str(self.status) if self.status is not None else f"error:{self.error}"


class Browser:
    """One cookie jar; requests only ever go to http://127.0.0.1:PORT."""

    def __init__(self, port):
        self.base = f"http://{HOST}:{port}"
        self.jar = http.cookiejar.CookieJar(policy=LoopbackCookiePolicy())
        self.opener = urllib.request.OpenerDirector()
        # Only the handlers needed: plain HTTP, cookies, every status kept. No proxy handler at
        # all, so no *_proxy variable can send the traffic elsewhere.
        for handler in (
            urllib.request.HTTPHandler(),
            urllib.request.HTTPCookieProcessor(self.jar),
            KeepEveryAnswer(),
        ):
            self.opener.add_handler(handler)
        self.token = None

    def request(self, method, path, fields=None):
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("User-Agent", "latch-accounts-bench/1.0")
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        start = time.perf_counter()
        try:
            with self.opener.open(req, timeout=TIMEOUT) as response:
                body = response.read().decode("utf-8", "replace")
                seconds = time.perf_counter() - start
                headers = {k.lower(): v for k, v in response.headers.items()}
                return Answer(response.status, body, headers, seconds=seconds)
        except Exception as error:  # timeouts, resets: counted, never fatal
            return Answer(error=type(error).__name__, seconds=time.perf_counter() - start)

    def get_form(self, path):
        """GETs a form page and keeps its CSRF token; True if there was one."""
        answer = self.request("GET", path)
        match = TOKEN.search(answer.body) if answer.status == 200 else None
        self.token = match.group(1) if match else None
        return self.token is not None

    def submit(self, path, **fields):
        return self.request("POST", path, {"csrf_token": self.token or "", **fields})


def register(port, username, password=PASSWORD):
    browser = Browser(port)
    if not browser.get_form("/account/register"):
        raise RuntimeError("GET /account/register gave no form")
    answer = browser.submit("/account/register", username=username, password=password)
    if answer.status != 303:
        raise RuntimeError(f"registering {username!r} answered {answer.key()}")
    return browser


def burst(port, form_path, action, field_sets):
    """One thread per entry of `field_sets`: each fetches `form_path` in its own browser, waits
    at the barrier, then POSTs its fields to `action`. Returns (answers, seconds from the
    release to the last answer, forms that could not be fetched, the browsers)."""
    barrier = threading.Barrier(len(field_sets) + 1, timeout=BARRIER_TIMEOUT)
    answers = [None] * len(field_sets)
    browsers = [Browser(port) for _ in field_sets]
    missing_forms = []

    def run(i, fields):
        browser = browsers[i]
        if not browser.get_form(form_path):
            missing_forms.append(i)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            answers[i] = Answer(error="BrokenBarrier")
            return
        answers[i] = browser.submit(action, **fields)

    threads = [threading.Thread(target=run, args=(i, f), daemon=True) for i, f in enumerate(field_sets)]
    for thread in threads:
        thread.start()
    barrier.wait()  # released with the others: the clock starts as they go
    start = time.perf_counter()
    for thread in threads:
        thread.join(TIMEOUT + BARRIER_TIMEOUT)
    elapsed = time.perf_counter() - start
    answers = [a or Answer(error="NoAnswer") for a in answers]
    return answers, elapsed, missing_forms, browsers


def count(answers):
    counts = {}
    for answer in answers:
        counts[answer.key()] = counts.get(answer.key(), 0) + 1
    return dict(sorted(counts.items()))


def buckets(counts):
    """401/303/429/503/other from the full counts."""
    main = {k: counts.get(k, 0) for k in ("401", "303", "429", "503")}
    main["other"] = sum(v for k, v in counts.items() if k not in main)
    return main


def with_retry_after(answers):
    return sum(1 for a in answers if "retry-after" in a.headers)


# ---------------------------------------------------------------------------------------------
# Servers and databases

SERVERS = []  # live Popen objects
DATABASES = []  # (admin url, name) to drop
TEMP_DIRS = []


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def psql(url, sql):
    out = subprocess.run(
        ["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {out.stderr.strip()}")
    return out.stdout.strip()


class Database:
    """A fresh database for one scenario: `url` for the server, `accounts()` to count rows."""

    def __init__(self, backend, pgurl):
        self.backend = backend
        if backend == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="latch-accounts-bench-")
            TEMP_DIRS.append(self.dir)
            self.path = os.path.join(self.dir, "latch.db")
            self.url = f"sqlite://{self.path}"
        else:
            self.dir = tempfile.mkdtemp(prefix="latch-accounts-bench-")
            TEMP_DIRS.append(self.dir)
            self.admin = pgurl
            self.name = "latch_accounts_bench_" + secrets.token_hex(6)
            psql(pgurl, f"create database {self.name}")
            DATABASES.append((pgurl, self.name))
            parts = urllib.parse.urlsplit(pgurl)
            self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))

    def accounts(self):
        if self.backend == "sqlite":
            with sqlite3.connect(self.path, timeout=30) as db:
                return db.execute("select count(*) from accounts").fetchone()[0]
        return int(psql(self.url, "select count(*) from accounts"))

    def drop(self):
        if self.backend == "postgres":
            drop_database(self.admin, self.name)


def drop_database(admin, name):
    try:
        psql(admin, f"drop database if exists {name} with (force)")
    except Exception as error:
        print(f"warning: could not drop database {name}: {error}", file=sys.stderr)
    if (admin, name) in DATABASES:
        DATABASES.remove((admin, name))


class Server:
    def __init__(self, binary, database, extra_env=None):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROCKET_") and k != "DATABASE_URL"}
        env.update({
            "DATABASE_URL": database.url,
            "ROCKET_PORT": str(self.port),
            "ROCKET_ADDRESS": HOST,
            "ROCKET_SECRET_KEY": SECRET_KEY,
            "ROCKET_LOG_LEVEL": "off",
        })
        env.update(extra_env or {})
        self.log_path = os.path.join(database.dir, f"server-{self.port}.log")
        self.log = open(self.log_path, "wb")
        # In the database's temporary folder, so no Rocket.toml from a checkout applies.
        self.process = subprocess.Popen(
            [binary], env=env, cwd=database.dir, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        SERVERS.append(self.process)
        self.pid = self.process.pid
        self._wait_listening()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip()

    def _wait_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(
                    f"the server exited during startup (status {code}); its output:\n{self.output() or '(none)'}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)  # startup only: never inside a measurement
        self.stop()
        raise RuntimeError(f"the server did not listen on {HOST}:{self.port} within {STARTUP_TIMEOUT} s; its output:\n{self.output() or '(none)'}")

    def status_kib(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        stop_process(self.process)
        self.log.close()


def stop_process(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process in SERVERS:
        SERVERS.remove(process)


def cleanup():
    for process in list(SERVERS):
        try:
            stop_process(process)
        except Exception:
            pass
    for admin, name in list(DATABASES):
        drop_database(admin, name)
    for path in TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)
    TEMP_DIRS.clear()


def scenario(binary, backend, pgurl, run, extra_env=None):
    database = Database(backend, pgurl)
    server = None
    try:
        server = Server(binary, database, extra_env)
        result = run(server, database)
        if server.process.poll() is not None:
            result["server_exited"] = server.process.returncode
            result["server_output"] = server.output()[-4000:]
        return result
    finally:
        if server is not None:
            server.stop()
        database.drop()


def mib(kib):
    return None if kib is None else round(kib / 1024, 1)


# ---------------------------------------------------------------------------------------------
# Scenarios


def wrong_password_burst(server, database):
    register(server.port, "victim")
    fields = [{"username": "victim", "password": WRONG_PASSWORD} for _ in range(A_WRONG)]
    right = A_WRONG // 2  # in the middle of the thread list; the barrier releases all at once
    fields.insert(right, {"username": "victim", "password": PASSWORD})
    answers, elapsed, missing, browsers = burst(server.port, "/account/login", "/account/login", fields)
    right_answer = answers[right]
    # Signed in for real: that browser's cookie now opens the device list (else a redirect).
    signed_in = right_answer.status == 303 and browsers[right].request("GET", "/account/sessions").status == 200
    wrong = answers[:right] + answers[right + 1:]
    counts = count(answers)
    return {
        "requests": len(answers),
        "counts": counts,
        "buckets": buckets(counts),
        "wrong_password_counts": count(wrong),
        "right_password_status": right_answer.key(),
        "right_password_signed_in": signed_in,
        "with_retry_after": with_retry_after(answers),
        "burst_s": round(elapsed, 3),
        "forms_missing": len(missing),
    }


def registration_burst(server, database):
    fields = [{"username": f"u{i}", "password": PASSWORD} for i in range(B_BROWSERS)]
    answers, elapsed, missing, browsers = burst(server.port, "/account/register", "/account/register", fields)
    counts = count(answers)
    return {
        "requests": len(answers),
        "counts": counts,
        "buckets": buckets(counts),
        "accounts_rows": database.accounts(),
        "with_retry_after": with_retry_after(answers),
        "burst_s": round(elapsed, 3),
        "forms_missing": len(missing),
    }


def unknown_user_flood(server, database):
    warm = Browser(server.port).request("GET", "/account/login")
    if warm.status != 200:
        raise RuntimeError(f"warm-up GET /account/login answered {warm.key()}")
    idle = server.status_kib("VmRSS")
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            value = server.status_kib("VmRSS")
            if value is not None:
                samples.append(value)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fields = [{"username": f"nobody{i}", "password": UNKNOWN_PASSWORD} for i in range(C_BROWSERS)]
        answers, elapsed, missing, browsers = burst(server.port, "/account/login", "/account/login", fields)
    finally:
        done.set()
        sampler.join()
    hwm = server.status_kib("VmHWM")
    peak = max([v for v in samples + [hwm] if v is not None], default=None)
    counts = count(answers)
    return {
        "requests": len(answers),
        "counts": counts,
        "buckets": buckets(counts),
        "idle_rss_mib": mib(idle),
        "peak_rss_mib": mib(peak),
        "peak_sampled_rss_mib": mib(max(samples) if samples else None),
        "vmhwm_mib": mib(hwm),
        "rss_samples": len(samples),
        "with_retry_after": with_retry_after(answers),
        "burst_s": round(elapsed, 3),
        "forms_missing": len(missing),
    }


def sign_in_latency(server, database):
    register(server.port, "ada")
    times, statuses = [], []
    for _ in range(D_SIGN_INS):
        browser = Browser(server.port)
        if not browser.get_form("/account/login"):
            raise RuntimeError("GET /account/login gave no form")
        answer = browser.submit("/account/login", username="ada", password=PASSWORD)
        times.append(answer.seconds * 1000)
        statuses.append(answer)
    counts = count(statuses)
    return {
        "requests": len(statuses),
        "counts": counts,
        "buckets": buckets(counts),
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(max(times), 1),  # of 20, the 99th percentile is the slowest
        "min_ms": round(min(times), 1),
        "times_ms": [round(t, 1) for t in times],
    }


SCENARIOS = [
    ("A", "wrong-password burst", wrong_password_burst, None),
    ("B", "registration burst", registration_burst, None),
    ("C", "unknown-user flood", unknown_user_flood, {"ROCKET_ACCOUNTS": "{max_failures_per_address=100000}"}),
    ("D", "sign-in latency", sign_in_latency, None),
]


# ---------------------------------------------------------------------------------------------
# Report


def notes(letter, r):
    if "error" in r:
        return "FAILED: " + r["error"].splitlines()[0]
    extra = ""
    if r.get("forms_missing"):
        extra += f"; {r['forms_missing']} forms missing"
    if "server_exited" in r:
        extra += f"; server exited ({r['server_exited']})"
    if letter == "A":
        return (f"right password: {r['right_password_status']}"
                f" ({'signed in' if r['right_password_signed_in'] else 'NOT signed in'});"
                f" burst {r['burst_s']:.2f} s" + extra)
    if letter == "B":
        return f"accounts rows: {r['accounts_rows']}; burst {r['burst_s']:.2f} s" + extra
    if letter == "C":
        return (f"RSS idle {r['idle_rss_mib']} MiB, peak {r['peak_rss_mib']} MiB"
                f" (sampled {r['peak_sampled_rss_mib']}, VmHWM {r['vmhwm_mib']});"
                f" burst {r['burst_s']:.2f} s" + extra)
    return f"POST p50 {r['p50_ms']} ms, p99 (max of {r['requests']}) {r['p99_ms']} ms" + extra


def table(backend, results):
    lines = [f"### {backend}", ""]
    header = f"{'scenario':<30} {'reqs':>4} {'401':>4} {'303':>4} {'429':>4} {'503':>4} {'other':>5}  notes"
    lines += [header, "-" * len(header)]
    for letter, name, _, _ in SCENARIOS:
        r = results[letter]
        label = f"{letter} {name}"
        if "error" in r:
            lines.append(f"{label:<30} {'':>4} {'':>4} {'':>4} {'':>4} {'':>4} {'':>5}  {notes(letter, r)}")
            continue
        b = r["buckets"]
        lines.append(f"{label:<30} {r['requests']:>4} {b['401']:>4} {b['303']:>4} {b['429']:>4} {b['503']:>4} {b['other']:>5}  {notes(letter, r)}")
    others = {f"{letter}": {k: v for k, v in results[letter].get("counts", {}).items() if k not in ("401", "303", "429", "503")}
              for letter, *_ in SCENARIOS}
    others = {k: v for k, v in others.items() if v}
    if others:
        lines.append("other statuses: " + "; ".join(f"{k}: {v}" for k, v in others.items()))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="the release latch binary")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--pgurl", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="Postgres admin URL (fresh databases are made and dropped from it)")
    parser.add_argument("--json", metavar="FILE", help="also write every number as JSON here")
    args = parser.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: {args.bin} is not an executable file")
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    if "postgres" in backends:
        host = urllib.parse.urlsplit(args.pgurl).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"error: --pgurl must point at loopback, not {host!r}")
        if shutil.which("psql") is None:
            sys.exit("error: psql is needed for the postgres backend")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below kills servers and drops databases.
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "binary": binary,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "backends": {},
    }
    print(f"## accounts attack benchmark, {report['date']}, {os.cpu_count()} cores; {binary}")
    exit_code = 0
    try:
        for backend in backends:
            results = {}
            for letter, name, run, extra_env in SCENARIOS:
                try:
                    results[letter] = {"name": name, **scenario(binary, backend, args.pgurl, run, extra_env)}
                except KeyboardInterrupt:
                    raise
                except Exception as error:
                    exit_code = 1
                    results[letter] = {"name": name, "error": str(error)}
                    print(f"[{backend}] {letter} {name} failed: {error}", file=sys.stderr)
            report["backends"][backend] = results
            print()
            print(table(backend, results), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers and dropping databases", file=sys.stderr)
        exit_code = 130
    finally:
        cleanup()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
