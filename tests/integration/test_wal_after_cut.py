#!/usr/bin/env python3
"""test_wal_after_cut.py: after the durable step the WAL holds only what recovery needs.

strata-load backfills 2 h of a small cluster (--ack-log) into a fresh strata: one WAL
segment, no checkpoint (far below the 64 MiB segment size; 2 h stays under the 1.5 x 2 h
span that starts a background cut).  POST /api/v1/admin/cut-head (bench-peers' durable step)
cuts the whole head into one block and checkpoints the WAL at segment 2.  The head is then
empty, so the checkpoint defines no series and needs no fallback (docs/storage.md,
"Checkpoints"): the WAL must be exactly checkpoint.00000002 and segment 00000002, 8-byte
headers both (16 bytes; it kept the 1st segment, the whole backfill, before).  strata is then
SIGKILLed and restarted: every acknowledged sample must be exported bit-exactly, from the
block, and the WAL is still those 16 bytes.  Prints TAP lines.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ack_check import check_acked  # noqa: E402
from strata_client import BUILD, free_port  # noqa: E402

HOURS = 2
HEADER = 8  # TSDB_WAL_HEADER_SIZE

tmp = tempfile.mkdtemp(prefix="strata-walcut-")
datadir = os.path.join(tmp, "data")
waldir = os.path.join(datadir, "wal")
port = free_port()
base = "http://127.0.0.1:%d" % port
strata_bin = os.path.join(BUILD, "strata")
load_bin = os.path.join(BUILD, "strata-load")
procs = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    shutil.rmtree(tmp, ignore_errors=True)


def bail(msg):
    print("not ok - " + msg)
    try:
        with open(os.path.join(tmp, "strata.log"), errors="replace") as f:
            print("# " + f.read()[-2000:].replace("\n", "\n# "))
    except OSError:
        pass
    cleanup()
    sys.exit(1)


def http(method, path):
    req = urllib.request.Request(base + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0, b""


def start_strata():
    log = open(os.path.join(tmp, "strata.log"), "a")
    p = subprocess.Popen([strata_bin, "--listen=127.0.0.1:%d" % port, "--data-dir=" + datadir,
                          "--auth=none", "--log-level=warn"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    end = time.time() + 60
    while time.time() < end:
        if p.poll() is not None:
            bail("strata exited with %s" % p.returncode)
        if http("GET", "/readyz")[0] == 200:
            return p
        time.sleep(0.05)
    bail("strata not ready after 60 s")


def wal_files():
    return {n: os.path.getsize(os.path.join(waldir, n)) for n in sorted(os.listdir(waldir))}


def main():
    print("1..4")
    for b in (strata_bin, load_bin):
        if not os.access(b, os.X_OK):
            bail("%s is not built" % b)
    strata = start_strata()
    ack = os.path.join(tmp, "ack.log")
    now = int(time.time())
    start = (now - HOURS * 3600 - 600) // 15 * 15
    r = subprocess.run([load_bin, "--url=" + base + "/api/v1/write", "--workloads=3", "--nodes=1",
                        "--start=%d" % start, "--backfill=%d" % HOURS, "--concurrency=2",
                        "--ack-log=" + ack, "--quiet"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        bail("strata-load exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-600:]))
    files = wal_files()
    if list(files) != ["00000001"] or files["00000001"] <= HEADER:
        bail("after the backfill the WAL is %s, want one segment 00000001 with records" % files)
    print("ok - the backfill is in one WAL segment (%d bytes), no checkpoint" % files["00000001"])

    st, body = http("POST", "/api/v1/admin/cut-head")
    if st != 200:
        bail("POST /api/v1/admin/cut-head answered %d: %s" % (st, body[:300]))
    ans = json.loads(body)
    files = wal_files()
    want = {"00000002": HEADER, "checkpoint.00000002": HEADER}
    if files != want or ans.get("wal_bytes") != 2 * HEADER or ans.get("blocks") != 1:
        bail("after the durable step the WAL is %s (cut-head answered %s), want %s" % (files, ans, want))
    print("ok - after the durable step the WAL is %d bytes: an empty checkpoint.00000002 and segment "
          "00000002, one block (%d bytes)" % (2 * HEADER, ans["block_bytes"]))

    strata.send_signal(signal.SIGKILL)
    strata.wait(timeout=10)
    strata = start_strata()
    nwant, nseries, err = check_acked(base, load_bin, ack, start, now)
    if err:
        bail("after a SIGKILL following the durable step: " + err)
    print("ok - SIGKILL after the durable step: all %d acknowledged samples (%d series) exported bit-exactly"
          % (nwant, nseries))

    files = wal_files()
    if files != want:
        bail("after the restart the WAL is %s, want %s" % (files, want))
    print("ok - the restart replayed the empty checkpoint and left the WAL at %d bytes" % (2 * HEADER))
    strata.send_signal(signal.SIGTERM)
    strata.wait(timeout=30)
    cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as e:  # never leave strata running
        print("not ok - wal after cut: %s: %s" % (type(e).__name__, e))
        cleanup()
        sys.exit(1)
