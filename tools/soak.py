#!/usr/bin/env python3
"""soak.py: a bounded fault campaign against the real binary (`make soak`, docs/soak.md).

    python3 tools/soak.py [--build build] [--minutes 10] [--seed N]

Four phases share the time budget (SOAK_MINUTES): kill -9 rounds under remote-write load
(every acknowledged sample must be in /api/v1/export afterwards), a full disk on a loop ext4
(writes get 503 and nothing else, then succeed again, nothing acknowledged lost), WAL and
block byte flips (loss bounded, no wrong sample), and slowloris against --max-connections-per-ip
while /healthz is polled.  Prints one table of figures, then "N passed, N failed" (one check
per line of the table's check column); exits 1 when any check failed.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import strata_client  # noqa: E402
from strata_client import Server, rw1  # noqa: E402
from test_hardening_http import Drip, get_from  # noqa: E402

CHECKS = []   # (phase, name, ok, detail)
FIGURES = []  # (phase, figure, value)


def check(phase, name, ok, detail=""):
    CHECKS.append((phase, name, bool(ok), str(detail)))
    print("%s - %s: %s%s" % ("ok" if ok else "not ok", phase, name, "" if ok else " (%s)" % str(detail)[:400]))
    sys.stdout.flush()
    return ok


def figure(phase, name, value):
    FIGURES.append((phase, name, value))


def start(datadir, port=None, extra=()):
    """A Server (tests/lib/strata_client.py), on a fixed port when given; (server, seconds to /readyz)."""
    t0 = time.time()
    if port is None:
        return Server(datadir, None, extra), time.time() - t0
    saved = strata_client.free_port
    strata_client.free_port = lambda: port
    try:
        return Server(datadir, None, extra), time.time() - t0
    finally:
        strata_client.free_port = saved


def kill9(srv):
    if srv.conn:
        srv.conn.close()
        srv.conn = None
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)


def log_tail(path, n=10):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-n:])
    except OSError:
        return ""


def metric(srv, name):
    st, _, body = srv.get("/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M) if st == 200 else None
    return float(m.group(1)) if m else None


def export(srv, names, start_s, end_s):
    """({sorted label tuple: {ts: value}}, {label tuples with a damaged-pages warning line})."""
    got, warned = {}, set()
    for name in sorted(names):
        q = urllib.parse.urlencode({"match[]": '{__name__="%s"}' % name, "start": str(start_s), "end": str(end_s)})
        st, _, body = srv.get("/api/v1/export?" + q)
        if st != 200:
            raise RuntimeError("export of %s answered %d: %s" % (name, st, body[:200]))
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            o = json.loads(line)
            if "values" not in o:
                if "warning" in o:
                    warned.add(tuple(sorted(o["metric"].items())))
                continue
            d = got.setdefault(tuple(sorted(o["metric"].items())), {})
            d.update(zip(o["timestamps"], o["values"]))
    return got, warned


def expand_ack(load_bin, ack):
    """Every sample an ack log acknowledged, from `strata-load --expand-ack`."""
    exp = subprocess.run([load_bin, "--expand-ack=" + ack], capture_output=True, text=True, timeout=300)
    if exp.returncode != 0:
        raise RuntimeError("strata-load --expand-ack failed: %s" % exp.stderr[-300:])
    want = {}
    for line in exp.stdout.splitlines():
        o = json.loads(line)
        want.setdefault(tuple(sorted(o["metric"].items())), {}).update(zip(o["timestamps"], o["values"]))
    return want


def compare(want, got):
    """(wanted, missing, wrong): wrong = present with other value bits."""
    n = missing = wrong = 0
    for k, d in want.items():
        g = got.get(k, {})
        for ts, v in d.items():
            n += 1
            if ts not in g:
                missing += 1
            elif struct.pack("<d", float(g[ts])) != struct.pack("<d", float(v)):
                wrong += 1
    return n, missing, wrong


def names_of(want):
    return {dict(k)["__name__"] for k in want}


# ---- phase 1: kill -9 under load --------------------------------------------------------------

def phase_kill(a, tmp, budget, rnd):
    P = "kill-9"
    load_bin = os.path.join(a.build, "strata-load")
    data, ack = os.path.join(tmp, "kill"), os.path.join(tmp, "kill-ack.log")
    port = strata_client.free_port()
    srv, _ = start(data, port, ["--wal-fsync=always"])
    interval, hours = 10, 2   # 720 ticks x 391 series = 281,520 samples
    total = 720 * 391
    load_s = max(8.0, budget * 0.6)
    rate = max(1000, int(total / load_s))
    now = int(time.time())
    t0 = (now - hours * 3600 - 600) // interval * interval
    load_log = open(os.path.join(tmp, "kill-load.log"), "w")
    load = subprocess.Popen([load_bin, "--url=%s/api/v1/write" % srv.url, "--workloads=4", "--nodes=1",
                             "--seed=%d" % rnd.randrange(1000), "--scrape-interval=%ds" % interval,
                             "--start=%d" % t0, "--backfill=%d" % hours, "--batch-size=100",
                             "--concurrency=2", "--rate=%d" % rate, "--retry-for=60",
                             "--ack-log=" + ack, "--quiet"],
                            stdout=load_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    kills, replay, crashed = 0, [], None
    try:
        deadline = time.time() + load_s + 30
        while load.poll() is None and time.time() < deadline:
            time.sleep(rnd.uniform(0.5, 2.5))
            if srv.proc.poll() is not None:
                crashed = "strata exited by itself (%s): %s" % (srv.proc.returncode, log_tail(srv.logpath))
                break
            if load.poll() is not None:
                break
            kill9(srv)
            kills += 1
            srv, secs = start(data, port, ["--wal-fsync=always"])
            replay.append(secs)
        try:
            rc = load.wait(timeout=max(5, deadline - time.time()))
        except subprocess.TimeoutExpired:
            load.kill()
            rc = "timeout"
        check(P, "strata never exited on its own", crashed is None, crashed)
        with open(load_log.name) as f:
            check(P, "strata-load got every batch acknowledged through the kills", rc == 0,
                  "rc %s: %s" % (rc, f.read()[-300:]))
        kill9(srv)  # one last crash with nothing in flight: what is read back is what replay recovered
        kills += 1
        srv, secs = start(data, port, ["--wal-fsync=always"])
        replay.append(secs)
        want = expand_ack(load_bin, ack)
        got, _ = export(srv, names_of(want), t0 - 60, now + 60)
        n, missing, wrong = compare(want, got)
        figure(P, "kills", kills)
        figure(P, "acked samples", n)
        figure(P, "lost samples", missing)
        figure(P, "wrong samples", wrong)
        figure(P, "max replay to /readyz", "%.2f s" % max(replay))
        check(P, "every acknowledged sample is in the export, bit-exact",
              n > 0 and missing == 0 and wrong == 0, "%d acked, %d missing, %d wrong" % (n, missing, wrong))
        check(P, "at least 3 kills landed", kills >= 3, kills)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        srv.stop()


# ---- phase 2: disk full on a loop filesystem ----------------------------------------------------

def run(*cmd):
    return subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def fill(path):
    """Writes path until the filesystem refuses (ENOSPC)."""
    chunk = os.urandom(1 << 16)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
        try:
            while True:  # the last partial blocks
                f.write(chunk[:4096])
                f.flush()
        except OSError:
            pass


def phase_disk(a, tmp, budget, rnd):
    P = "disk-full"
    img, mnt = os.path.join(tmp, "fs.img"), os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    r = run("truncate", "-s", "32M", img)
    if r.returncode == 0:
        r = run("mkfs.ext4", "-q", "-F", "-m", "0", img)
    if r.returncode == 0:
        r = run("mount", "-o", "loop", img, mnt)
    if r.returncode != 0:
        why = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "exit %d" % r.returncode
        figure(P, "result", "skipped: cannot mount a loop filesystem (%s)" % why)
        print("# disk-full skipped: cannot mount a loop filesystem (%s)" % why)
        return
    srv = None
    try:
        os.mkdir(os.path.join(mnt, "data"))
        data = os.path.join(tmp, "disk")
        os.symlink(os.path.join(mnt, "data"), data)  # the server's log stays outside the loop fs
        srv, _ = start(data, None, ["--wal-fsync=always"])
        acked, statuses = {}, {}
        t = [int(time.time() * 1000) - 6 * 3600 * 1000]  # 2.5 s of samples per request

        def write_batch():
            batch = []
            for s in range(20):
                pts = [(rnd.random() * 1e6, t[0] + i * 100) for i in range(25)]
                batch.append(([("__name__", "soak_disk"), ("s", "%02d" % s)], pts))
            t[0] += 25 * 100
            try:
                st = srv.write(rw1(batch))[0]
            except OSError:
                st = 0
            statuses[st] = statuses.get(st, 0) + 1
            if st == 204:
                for labels, pts in batch:
                    acked.setdefault(tuple(sorted(labels)), {}).update({ts: v for v, ts in pts})
            return st

        for _ in range(50):
            write_batch()
        fill(os.path.join(mnt, "filler"))
        end, n503 = time.time() + max(3.0, budget * 0.35), 0
        while time.time() < end and srv.proc.poll() is None:
            n503 += write_batch() == 503
            time.sleep(0.01)
        full = dict(statuses)
        check(P, "writes on the full disk get 503", n503 > 0, full)
        check(P, "no status but 204 and 503 (no other 5xx, no dropped connection)",
              set(full) <= {204, 503}, full)
        check(P, "strata is alive on the full disk", srv.proc.poll() is None, log_tail(srv.logpath))
        os.unlink(os.path.join(mnt, "filler"))
        end, ok_after = time.time() + max(5.0, budget * 0.3), 0
        while time.time() < end and ok_after < 20 and srv.proc.poll() is None:
            ok_after += write_batch() == 204
            time.sleep(0.02)
        check(P, "writes succeed again once space is freed", ok_after >= 20, statuses)
        check(P, "no status but 204 and 503 overall", set(statuses) <= {204, 503}, statuses)
        kill9(srv)
        srv, _ = start(data, None, ["--wal-fsync=always"])
        got, _ = export(srv, {"soak_disk"}, 0, int(time.time()) + 60)
        n, missing, wrong = compare(acked, got)
        figure(P, "writes 204 / 503 / other", "%d / %d / %d" % (
            statuses.get(204, 0), statuses.get(503, 0), sum(v for k, v in statuses.items() if k not in (204, 503))))
        figure(P, "acked samples", n)
        figure(P, "lost samples", missing)
        check(P, "every acknowledged sample survived (after a kill -9 too)",
              n > 0 and missing == 0 and wrong == 0, "%d acked, %d missing, %d wrong" % (n, missing, wrong))
    finally:
        if srv and srv.proc.poll() is None:
            srv.stop()
        if run("umount", mnt).returncode != 0:
            time.sleep(1)
            run("umount", "-l", mnt)


# ---- phase 3: WAL and block byte flips ---------------------------------------------------------

def page_offsets(path):
    """(offset, compressed length) of each page of a page file (docs/storage.md, format.h)."""
    with open(path, "rb") as fh:
        data = fh.read()
    off, out = 8, []
    while off + 12 <= len(data):
        _, comp, _ = struct.unpack_from("<III", data, off)
        out.append((off, comp))
        off += 12 + comp
    return out


def flip(path, off, n=4):
    with open(path, "r+b") as fh:
        fh.seek(off)
        b = bytearray(fh.read(n))
        fh.seek(off)
        fh.write(bytes(x ^ 0x5A for x in b))


def phase_flips(a, tmp, budget, rnd):
    P = "flips"
    data = os.path.join(tmp, "flips")
    srv, _ = start(data, None, ["--wal-fsync=never"])
    try:
        # Random full-precision values at 1 s: nothing compresses, so a ~64 KiB chunk page holds
        # ~8k samples and the block has enough pages for one of them to be a small share.
        per = max(600, min(6000, int(budget * 100)))
        now_ms = int(time.time()) * 1000
        t0 = (now_ms - 5 * 3600 * 1000) // 3600000 * 3600000
        cut_ms = t0 + per * 1000
        want, sts = {}, {}

        def send(series):
            st = srv.write(rw1(series))[0]
            sts[st] = sts.get(st, 0) + 1
            if st == 204:
                for labels, pts in series:
                    want.setdefault(tuple(sorted(labels)), {}).update({t: v for v, t in pts})

        for s in range(500):  # the block: 500 series x per samples, one request per 2000
            lab = [("__name__", "soak_flip"), ("s", "%03d" % s)]
            for k in range(0, per, 2000):
                send([(lab, [(rnd.random() * 1e6, t0 + i * 1000) for i in range(k, min(per, k + 2000))])])
        c = srv.req("POST", "/api/v1/admin/cut-head")[0]
        check(P, "head cut into a block", c in (200, 204), c)
        for k in range(0, 600, 20):  # the WAL: 100 series x 600 samples, 200 samples per request
            for g in range(0, 100, 10):
                send([([("__name__", "soak_flip"), ("s", "%03d" % s)],
                       [(rnd.random() * 1e6, cut_ms + i * 1000) for i in range(k, k + 20)])
                      for s in range(g, g + 10)])
        check(P, "every write acknowledged", set(sts) == {204}, sts)
        srv.stop()
        chunks = [os.path.join(d, "chunks") for d, _, fs in os.walk(data) if "chunks" in fs]
        segs = sorted(os.path.join(d, f) for d, _, fs in os.walk(data) if os.path.basename(d) == "wal"
                      for f in fs if f.isdigit() and os.path.getsize(os.path.join(d, f)) > 4096)
        pages = page_offsets(chunks[0]) if chunks else []
        if not check(P, "a block chunks file with pages and a WAL segment to damage", pages and segs,
                     "chunks %s segments %s" % (chunks, segs)):
            return
        off, comp = rnd.choice(pages)  # 4 bytes in the middle of a random page
        flip(chunks[0], off + 12 + comp // 2)
        index = os.path.join(os.path.dirname(chunks[0]), "index")
        flip(index, os.path.getsize(index) // 2)  # read from the block's copy, then put back
        seg = segs[-1]
        flip(seg, rnd.randrange(os.path.getsize(seg) // 4, os.path.getsize(seg) * 3 // 4))
        srv, _ = start(data, None, ["--wal-fsync=never"])
        got, warned = export(srv, {"soak_flip"}, t0 // 1000 - 60, now_ms // 1000 + 60)
        n, missing, wrong = compare(want, got)
        blk_n = blk_miss = silent = wal_n = wal_miss = 0
        for k, d in want.items():
            g = got.get(k, {})
            for ts in d:
                if ts < cut_ms:
                    blk_n += 1
                    blk_miss += ts not in g
                    silent += ts not in g and k not in warned
                else:
                    wal_n += 1
                    wal_miss += ts not in g
        frac = missing / n if n else 1.0
        # a damaged page of a version 5 block is rebuilt from its parity
        # (counted as rebuilt) or, when it cannot be, counted as damaged
        dmg = (metric(srv, "strata_block_pages_damaged_total") or 0) + \
            (metric(srv, "strata_block_pages_rebuilt_total") or 0)
        walc = metric(srv, "strata_wal_corruptions_total")
        figure(P, "samples before / after", "%d / %d" % (n, n - missing))
        figure(P, "fraction lost (target < 1%)", "%.3f%%" % (100 * frac))
        figure(P, "lost in the block / its chunk pages", "%d of %d / %d pages" % (blk_miss, blk_n, len(pages)))
        figure(P, "lost in the WAL (head)", "%d of %d (%.3f%%)" % (wal_miss, wal_n, 100.0 * wal_miss / max(1, wal_n)))
        figure(P, "damaged or rebuilt pages / WAL corruptions reported", "%s / %s" % (
            int(dmg) if dmg is not None else "?", int(walc) if walc is not None else "?"))
        figure(P, "series with an export warning line", len(warned))
        check(P, "no wrong sample after the flips", wrong == 0, "%d wrong" % wrong)
        check(P, "block loss only in series the export flags as damaged (nothing lost silently)",
              silent == 0, "%d samples lost without a warning line" % silent)
        check(P, "fraction lost < 1%", frac < 0.01, "%d of %d" % (missing, n))
        check(P, "WAL flip loses < 1% of the head's samples", wal_n and wal_miss < 0.01 * wal_n,
              "%d of %d" % (wal_miss, wal_n))
        check(P, "the damage is reported (damaged or rebuilt page and WAL corruption counted)",
              (dmg or 0) >= 1 and (walc or 0) >= 1, "pages %s wal %s" % (dmg, walc))
        cdir = os.path.join(data, "corrupt")
        aside = sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []
        check(P, "an index flip costs nothing: the block reads its copy and the index is put back",
              any(f.startswith("block-") and f.endswith("-index") for f in aside)
              and not any(os.path.isdir(os.path.join(cdir, f)) for f in aside), aside)
        check(P, "strata is alive after the flips", srv.proc.poll() is None, log_tail(srv.logpath))
    finally:
        if srv.proc.poll() is None:
            srv.stop()


# ---- phase 4: slowloris ----------------------------------------------------------------------

def phase_slow(a, tmp, budget, rnd):
    P = "slowloris"
    per_ip = 8
    srv, _ = start(os.path.join(tmp, "slow"), None,
                   ["--threads=1", "--max-connections=24", "--max-connections-per-ip=%d" % per_ip,
                    "--header-timeout=60s"])
    srv.conn.close()  # the readiness probe's connection is from 127.0.0.1 too
    srv.conn = None
    lat, fails, stop = [], [], threading.Event()

    def poll():
        while not stop.wait(0.1):
            st, body, secs = get_from(srv.port, "/healthz", "127.0.0.2")
            lat.append(secs)
            if st != 200:
                fails.append((st, body[:80]))

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    drips, opened, refused = [], 0, 0
    try:
        end = time.time() + max(5.0, budget - 3)
        while time.time() < end:
            d = Drip(srv.port, 3 * per_ip)  # three times the limit, from one address
            opened += len(d.socks)
            drips.append(d)
            time.sleep(min(4.0, max(0.5, end - time.time())))
            d.poll()
            refused += d.nclosed()
            d.close()
            drips.pop()
    finally:
        stop.set()
        th.join()
        for d in drips:
            d.close()
    alive = srv.proc.poll() is None
    figure(P, "slow connections opened / closed by strata", "%d / %d (limit %d per ip)" % (opened, refused, per_ip))
    figure(P, "/healthz polls / worst latency", "%d / %.3f s" % (len(lat), max(lat) if lat else -1))
    check(P, "every /healthz poll answered 200", lat and not fails, fails[:3])
    check(P, "/healthz worst latency under 1 s", lat and max(lat) < 1.0, max(lat) if lat else None)
    check(P, "the connections over --max-connections-per-ip were closed", refused >= opened // 2,
          "%d of %d" % (refused, opened))
    check(P, "strata is alive", alive, log_tail(srv.logpath))
    srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=strata_client.BUILD)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 10)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", random.randrange(1 << 30))))
    a = ap.parse_args()
    strata_client.BUILD = a.build
    for b in ("strata", "strata-load"):
        if not os.access(os.path.join(a.build, b), os.X_OK):
            sys.exit("soak: %s/%s is not built" % (a.build, b))
    total = a.minutes * 60
    print("# soak: %.1f minutes, SOAK_SEED=%d" % (a.minutes, a.seed))
    rnd = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="strata-soak-")
    t_start = time.time()
    phases = (("kill-9", phase_kill, 0.4), ("disk-full", phase_disk, 0.15), ("flips", phase_flips, 0.25),
              ("slowloris", phase_slow, 0.2))
    try:
        for name, fn, share in phases:
            t0 = time.time()
            print("# phase %s (budget %.0f s)" % (name, share * total))
            sys.stdout.flush()
            try:
                fn(a, tmp, share * total, rnd)
            except Exception as e:  # a phase that blows up is a failed check, the others still run
                check(name, "phase ran to the end", False, "%s: %s" % (type(e).__name__, e))
            figure(name, "phase time", "%.1f s" % (time.time() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n%-10s %-44s %s" % ("phase", "figure", "value"))
    print("-" * 78)
    for p, n, v in FIGURES:
        print("%-10s %-44s %s" % (p, n, v))
    print("-" * 78)
    print("total time %.1f s (budget %.0f s), SOAK_SEED=%d" % (time.time() - t_start, total, a.seed))
    failed = [c for c in CHECKS if not c[2]]
    for p, n, _, d in failed:
        print("FAILED %s: %s (%s)" % (p, n, d[:300]))
    print("%d passed, %d failed" % (len(CHECKS) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
