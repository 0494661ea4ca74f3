#!/usr/bin/env python3
"""bench_gateway.py: the scale-out write path's cost (make bench-gateway; docs/scale-out.md).

strata-load pushes as fast as accepted for BENCH_SECONDS (default 15) into
  1. strata alone (local ingest),
  2. strata with --remote-write-url to a real victoria-metrics (shipping while ingesting),
  3. the same with victoria-metrics stopped for the whole push, then started: the catch-up.
Prints strata's CPU per million samples ingested (including shipping) and the catch-up rate
(samples the engine acknowledged per second once it is back).  Figures only, nothing asserted.
Everything on 127.0.0.1 with temp dirs; every process is stopped at the end.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from strata_client import Server, free_port, metric_value  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SECONDS = os.environ.get("BENCH_SECONDS", "15")
tmp = tempfile.mkdtemp(prefix="strata-bench-gw-")
vm_port = free_port()
vm = None


def vm_start():
    global vm
    vm = subprocess.Popen(["/usr/bin/victoria-metrics", "-storageDataPath=" + os.path.join(tmp, "vm"),
                           "-httpListenAddr=127.0.0.1:%d" % vm_port, "-loggerLevel=ERROR"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/health" % vm_port, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("victoria-metrics did not start")


def vm_stop():
    if vm and vm.poll() is None:
        vm.send_signal(signal.SIGTERM)
        vm.wait()


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def run(name, remote, outage):
    extra = ["--remote-write-url=http://127.0.0.1:%d/api/v1/write" % vm_port] if remote else []
    s = Server(os.path.join(tmp, name), extra=extra, build=BUILD)
    try:
        if outage:
            vm_stop()
        c0 = cpu(s.proc.pid)
        subprocess.run([os.path.join(BUILD, "strata-load"), "--url=" + s.url + "/api/v1/write", "--max-throughput",
                        "--duration=" + SECONDS, "--workloads=40", "--nodes=8", "--quiet", "--concurrency=2"],
                       check=False)
        c1 = cpu(s.proc.pid)
        t0 = time.time()
        if outage:
            vm_start()
        while remote and metric_value(s.get("/metrics")[2], "strata_remote_queue_bytes") != 0:
            time.sleep(0.1)
        catch = time.time() - t0
        c2 = cpu(s.proc.pid)
        m = s.get("/metrics")[2]
        n = metric_value(m, "strata_ingested_samples_total") or 1
        shipped = metric_value(m, "strata_remote_samples_shipped_total") or 0
        print("%-28s ingested %10.0f  shipped %10.0f  strata CPU per 1M samples %.2f s" % (name, n, shipped,
                                                                                         (c2 - c0) / n * 1e6))
        if outage:
            print("%-28s catch-up %.1f s, %.0f samples/s, shipper CPU %.2f s per 1M samples" % (
                "", catch, shipped / catch if catch else 0, (c2 - c1) / max(shipped, 1) * 1e6))
    finally:
        s.stop()


try:
    vm_start()
    run("local ingest", 0, 0)
    run("ingest + shipping", 1, 0)
    run("ingest, engine down, catch-up", 1, 1)
finally:
    vm_stop()
    shutil.rmtree(tmp, ignore_errors=True)
