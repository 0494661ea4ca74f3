#!/usr/bin/env python3
"""test_crash_ingest.py: nothing strata acknowledged is lost when it is SIGKILLed.

strata runs with --wal-fsync=always; strata-load first backfills an hour of
another cluster with remote-write 2.0, then backfills a small simulated
cluster into it (rate-limited, so the run spans the kills) with --ack-log.
strata is SIGKILLed at random moments several times and restarted at once;
strata-load keeps retrying (5xx and refused connections are retryable) and
must end with every batch acknowledged.  A last SIGKILL after the load ends
makes the final check read only what the WAL replay recovered.  Then
`strata-load --expand-ack` re-derives every acknowledged sample and each one
must be in /api/v1/export with the same timestamp and bit-identical value.
The random seed is printed so a failure can be replayed (CRASH_SEED=N).
Prints TAP lines.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import free_port, http_call, kill_all, log_tails, wait_http  # noqa: E402
from ack_check import check_acked  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
KILLS = 4
SEED = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
INTERVAL_S = 10
HOURS = 2          # 720 ticks x 391 series = 281520 samples
RATE = 25000       # samples/s: about 10 s of load, long enough for the kills

procs = []
tmp = tempfile.mkdtemp(prefix="strata-crash-")


def cleanup():
    kill_all(procs)
    shutil.rmtree(tmp, ignore_errors=True)


def bail(msg):
    print("not ok - " + msg)
    print(log_tails(tmp, 2000))
    cleanup()
    sys.exit(1)


port = free_port()
base = "http://127.0.0.1:%d" % port
strata_bin = os.path.join(BUILD, "strata")
load_bin = os.path.join(BUILD, "strata-load")
datadir = os.path.join(tmp, "data")
starts = 0


def start_strata():
    global starts
    starts += 1
    log = open(os.path.join(tmp, "strata.log"), "a")
    log.write("=== start %d\n" % starts)
    log.flush()
    p = subprocess.Popen([strata_bin, "--listen=127.0.0.1:%d" % port, "--data-dir=" + datadir,
                          "--wal-fsync=always", "--auth=none"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    wait_http(base + "/healthz", p, "strata", timeout=60)
    return p


def kill9(p):
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)


def acked_lines(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if not line.startswith("#"))
    except OSError:
        return 0


def verify(ack, start, end):
    """Every sample the ack log acknowledged is in /api/v1/export, bit-exactly."""
    nwant, nseries, err = check_acked(base, load_bin, ack, start, end)
    if err:
        bail(err)
    return nwant, nseries


def main():
    print("1..4")
    for b in (strata_bin, load_bin):
        if not os.access(b, os.X_OK):
            bail("%s is not built" % b)
    strata = start_strata()
    wait_http(base + "/readyz", strata, "strata /readyz", timeout=60)
    print("# CRASH_SEED=%d" % SEED)
    rnd = random.Random(SEED)

    ack = os.path.join(tmp, "ack.log")
    now = int(time.time())
    start = (now - HOURS * 3600 - 600) // INTERVAL_S * INTERVAL_S  # whole range inside the past

    # First an hour of remote-write 2.0 from strata-load, older than the main
    # load (series the two share must stay in time order): checked at the end.
    ack2 = os.path.join(tmp, "ack-v2.log")
    start2 = start - 4 * 3600
    r2 = subprocess.run([load_bin, "--url=" + base + "/api/v1/write", "--rw-version=2", "--workloads=3",
                         "--nodes=1", "--seed=%d" % (SEED % 1000 + 2000), "--scrape-interval=30s",
                         "--start=%d" % start2, "--backfill=1", "--batch-size=150",
                         "--samples-per-series=4", "--ack-log=" + ack2, "--quiet"],
                        capture_output=True, text=True, timeout=60)
    if r2.returncode != 0 or "receiver did not confirm" in r2.stderr:
        bail("strata-load --rw-version=2 exited %d: %s" % (r2.returncode, (r2.stdout + r2.stderr)[-600:]))
    load_log = open(os.path.join(tmp, "strata-load.log"), "w")
    load = subprocess.Popen([load_bin, "--url=" + base + "/api/v1/write", "--workloads=4", "--nodes=1",
                             "--seed=%d" % (SEED % 1000 + 1), "--scrape-interval=%ds" % INTERVAL_S,
                             "--start=%d" % start, "--backfill=%d" % HOURS, "--batch-size=100",
                             "--concurrency=2", "--rate=%d" % RATE, "--retry-for=60",
                             "--ack-log=" + ack, "--quiet"],
                            stdout=load_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(load)

    seen = []
    for k in range(KILLS):
        time.sleep(rnd.uniform(0.8, 2.2))
        if load.poll() is not None:
            break
        seen.append(acked_lines(ack))
        kill9(strata)
        strata = start_strata()
    try:
        rc = load.wait(timeout=120)
    except subprocess.TimeoutExpired:
        bail("strata-load did not finish within 120 s")
    final = acked_lines(ack)
    if len(seen) < 3:
        bail("only %d kills happened before the load ended (acked batches %s of %d)" % (len(seen), seen, final))
    if not all(0 < a < final for a in seen):
        bail("kills did not land mid-load: acked batches at kills %s, final %d" % (seen, final))
    print("ok - strata SIGKILLed %d times mid-load (acked batches at kills: %s of %d)" % (len(seen), seen, final))
    if rc != 0:
        with open(os.path.join(tmp, "strata-load.log")) as f:
            bail("strata-load exited %d: %s" % (rc, f.read()[-800:]))
    print("ok - strata-load retried through the crashes and every batch was acknowledged")

    # One more crash with nothing in flight: the check reads what replay recovered.
    kill9(strata)
    strata = start_strata()
    wait_http(base + "/readyz", strata, "strata /readyz after replay", timeout=60)

    nwant, nseries = verify(ack, start, now)
    print("ok - all %d acknowledged samples (%d series) survived %d SIGKILLs bit-exactly"
          % (nwant, nseries, len(seen) + 1))

    nwant, nseries = verify(ack2, start2, start2 + 3600)
    print("ok - remote-write 2.0: %d acknowledged samples (%d series, 4 per series per request) "
          "survived the SIGKILLs bit-exactly" % (nwant, nseries))
    cleanup()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as e:  # never leave strata running; bail shows the logs' tails
        bail("crash ingest: %s: %s" % (type(e).__name__, e))
