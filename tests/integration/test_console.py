#!/usr/bin/env python3
"""test_console.py: the web console (docs/console.md) in Debian's headless Chromium.

build/strata runs with --auth=jwt on loopback in a temp dir (--staleness=1h, so the backfilled
workloads stay live for the whole test).  strata-load backfills, each with a fixed --start
computed here (whole minutes, ending at most a minute before now):
  tenant 1: 2 h of a 12-workload, 2-node cluster (Training, Inference with NIM, Workspace,
            a Pending one): the table, telemetry, reports and a NIM workload's charts;
  tenant 2: 7 days of one 8-GPU Training workload: its charts and the two figures.
Then tests/integration/console_browser.mjs drives the pages with playwright-core (npm, pinned by
console/package-lock.json) on /usr/bin/chromium, compares what they show with the API's own
answers, keeps screenshots under build/console/ and prints TAP lines and the figures.  Any
console error or failed request on a page is a failure (the 401s of the token step excepted).
Prints TAP lines; the plan comes last.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from strata_client import BUILD, SECRET, Server, metric_value, token  # noqa: E402

TAPS = 0
FAILS = 0


def tap(ok, name, info=""):
    global TAPS, FAILS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[-25:]:
            print("#   " + line)
    sys.stdout.flush()


def trace_path():
    """The GPU trace strata-load replays: $STRATA_TRACE, else shared/ beside the repository
    (CI's layout), else the shared folder of this machine's worktrees."""
    for p in (os.environ.get("STRATA_TRACE"), os.path.join(ROOT, "..", "shared", "data", "h200-nvml-trace.csv"),
              "/work/shared/data/h200-nvml-trace.csv"):
        if p and os.path.exists(p):
            return p
    return None


def load(srv, tmp, tenant, flags):
    tokfile = os.path.join(tmp, "w%d.jwt" % tenant)
    with open(tokfile, "w") as fh:
        fh.write(token(tenant, "metrics:write"))
    args = [os.path.join(BUILD, "strata-load"), "--url=%s/api/v1/write" % srv.url, "--bearer-token-file=" + tokfile,
            "--quiet"] + flags
    tr = trace_path()
    if tr:
        args.append("--trace=" + tr)
    t0 = time.time()
    run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return run.returncode, time.time() - t0, run.stdout.decode(errors="replace")


def http_checks(srv):
    """The console's files over plain HTTP: gzip when accepted, ETag and 304, the CSP, every
    page path answering index.html without a token, unknown files 404."""
    st, h, gz = srv.req("GET", "/", headers={"Accept-Encoding": "gzip, deflate"})
    st2, h2, raw = srv.req("GET", "/")
    import gzip
    ok = (st == 200 and h.get("content-encoding") == "gzip" and gzip.decompress(gz) == raw and st2 == 200
          and "content-encoding" not in h2 and raw.startswith(b"<!doctype html>") and h.get("etag") == h2.get("etag")
          and "script-src 'self'" in h.get("content-security-policy", "") and h.get("cache-control") == "no-cache")
    tap(ok, "GET / answers the console's page without a token: gzip when accepted (%d of %d bytes), same ETag raw"
        % (len(gz), len(raw)), (st, h, st2, h2))
    refused = [srv.req("GET", "/", headers={"Accept-Encoding": ae}) for ae in ("gzip;q=0", "identity", "br, deflate")]
    tap(all(r[0] == 200 and "content-encoding" not in r[1] and r[2] == raw for r in refused),
        "gzip;q=0, identity or other encodings get the raw page", [(r[0], r[1].get("content-encoding")) for r in refused])
    st3, h3, body3 = srv.req("GET", "/", headers={"If-None-Match": h.get("etag", "x")})
    tap(st3 == 304 and body3 == b"", "a reload with If-None-Match gets 304", (st3, h3))
    js = raw.decode().split('<script src="')[1].split('"')[0]
    st4, h4, b4 = srv.req("GET", js, headers={"Accept-Encoding": "gzip"})
    tap(st4 == 200 and h4.get("content-type", "").startswith("text/javascript") and "immutable" in h4.get("cache-control", "")
        and h4.get("content-encoding") == "gzip", "the script (%s, %d bytes gzipped) is cached for good under its hash" % (js, len(b4)), h4)
    paths = ["/workloads/0b0e0000-0000-4000-8000-000000000000", "/telemetry", "/reports"]
    same = [srv.req("GET", p_)[2] == raw for p_ in paths]
    st5, _, b5 = srv.req("GET", "/console/nope.js")
    st6, _, b6 = srv.req("HEAD", "/")
    tap(all(same) and st5 == 404 and b"not found" in b5 and st6 == 200 and b6 == b"",
        "every page path answers index.html, HEAD works, an unknown console file is 404", (same, st5, b5, st6))


def settle(srv, tok, quiet_s=3.0, max_s=120.0):
    """Waits until the store stops cutting blocks out of the backfill (strata_blocks unchanged
    for quiet_s), so the figures time the console, not a background head cut."""
    t0 = time.time()
    last, since = None, time.time()
    while time.time() - t0 < max_s:
        b = metric_value(srv.get("/metrics", tok)[2], "strata_blocks")
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            break
        time.sleep(0.5)
    print("# store settled after %.1f s (%s blocks)" % (time.time() - t0, last))


def main():
    tmp = tempfile.mkdtemp(prefix="strata-console-")
    shots = os.path.join(BUILD, "console") if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD, "console")
    os.makedirs(shots, exist_ok=True)
    pw = os.path.join(ROOT, "console", "node_modules", "playwright-core", "index.mjs")
    srv = None
    try:
        have = os.path.exists(pw) and os.path.exists("/usr/bin/chromium") and shutil.which("node")
        tap(bool(have), "node, playwright-core (console/node_modules) and /usr/bin/chromium are installed",
            "make deps && make installs them (tools/deps.sh, tools/console_build.sh)")
        if not have:
            return
        secret = os.path.join(tmp, "secret")
        with open(secret, "wb") as fh:
            fh.write(SECRET)
        srv = Server(os.path.join(tmp, "data"), secret, ["--staleness=1h", "--retention=30d", "--report-worker-delay=2s"])
        http_checks(srv)
        now = int(time.time()) // 60 * 60 - 60
        s2 = now - 2 * 3600
        s7 = now - 168 * 3600
        rc, secs, out = load(srv, tmp, 1, ["--workloads=12", "--nodes=2", "--seed=2", "--backfill=2",
                                           "--start=%d" % s2])
        tap(rc == 0, "strata-load backfilled 2 h of 12 workloads for tenant 1 (%.1f s)" % secs, out[-800:])
        rc, secs, out = load(srv, tmp, 2, ["--workloads=1", "--nodes=1", "--seed=1", "--backfill=168",
                                           "--start=%d" % s7, "--samples-per-series=240", "--batch-size=96"])
        tap(rc == 0, "strata-load backfilled 7 days of one 8-GPU workload for tenant 2 (%.1f s)" % secs, out[-800:])
        settle(srv, token(1, "metrics:read"))
        cfg = {
            "url": srv.url,
            "tokens": {"t1": token(1, "metrics:read reports:write"), "t2": token(2, "metrics:read"),
                       "t1_noreports": token(1, "metrics:read")},
            "smallStart": s2 * 1000, "smallEnd": (s2 + 2 * 3600) * 1000,
            "shots": shots,
            "playwright": pw,
        }
        env = dict(os.environ, STRATA_CONSOLE_TEST=json.dumps(cfg))
        proc = subprocess.run(["node", os.path.join(HERE, "console_browser.mjs")], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, timeout=400)
        seen = 0
        for line in proc.stdout.decode(errors="replace").splitlines():
            if line.startswith("ok - ") or line.startswith("not ok - "):
                tap(line.startswith("ok - "), line.split(" - ", 1)[1])
                seen += 1
            elif line.startswith("#") or line.startswith("  "):
                print(line)
            else:
                print("# " + line)
        tap(proc.returncode == 0 and seen > 0, "the browser script ran to its end (exit %d, %d checks)"
            % (proc.returncode, seen))
    finally:
        if srv:
            try:
                srv.stop()
                tap(True, "strata stopped cleanly")
            except AssertionError as e:
                tap(False, "strata stopped cleanly", e)
        shutil.rmtree(tmp, ignore_errors=True)
        print("1..%d" % TAPS)


if __name__ == "__main__":
    main()
