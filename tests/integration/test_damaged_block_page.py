#!/usr/bin/env python3
"""test_damaged_block_page.py: one damaged chunk page, through the real binary.

docs/storage.md ("Damaged pages", "Parity") and docs/api.md: the fixture cluster plus eight
GPU utilisation series of workload A sampled every second for an hour (so they fill several
chunk pages, and sort before every other series: "DCGM_..." is upper case) are written, the
head is cut into a block (POST /api/v1/admin/cut-head), the server stopped, 4 bytes flipped
in the block's second chunk page and one in its copy, and the server restarted.  The page is
rebuilt from the block's parity and the copy rewritten:
  - metrics and export answer every GPU series exactly, with no warning and no error line;
  - /metrics has strata_block_pages_rebuilt_total 1, strata_block_pages_damaged_total 0
    and strata_block_files_repaired_total{file="copy"} 1.
Then the server is stopped again and the same bytes flipped in the parity file too (the
page's parity group now holds two damaged members), and the server restarted: the page is
lost exactly as without parity:
  - the block is still there (nothing under <data-dir>/.../corrupt/), the workload still known;
  - GPU_UTILIZATION of A (1-minute buckets: raw reads) answers 200 with
    X-Strata-Warning: <n> damaged block pages skipped, and JSON in the usual shape;
  - /metrics has strata_block_pages_damaged_total 1 and strata_block_pages_rebuilt_total 0;
  - an export of the GPU series gives every undamaged series exactly as written, a
    {"warning":...,"metric":{...}} line after each damaged one, and ends with an
    {"error":"export incomplete: ..."} line.
Prints TAP lines.
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import SECRET, Server, has_metric_line, iso, rw1, token  # noqa: E402
from fixture_workloads import A, Fixture  # noqa: E402

FAILS = 0


def tap(ok, name, info=""):
    global FAILS
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()


def gpu_labels(g):
    return [("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("container", "main"), ("gpu", str(g)),
            ("namespace", "runai-proj-one"), ("node", "node-1"), ("pod", "train-a-0")]


def gpu_samples(g, t0):
    x = (0x9E3779B97F4A7C15 * (g + 1)) & 0xFFFFFFFFFFFFFFFF
    out = []
    for i in range(3600):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        out.append(((x % 1000000) / 7.0, t0 + i * 1000))
    return out


def find_files(root, name):
    return [os.path.join(d, name) for d, _, fs in os.walk(root) if name in fs]


def page_offsets(path):
    with open(path, "rb") as fh:
        data = fh.read()
    off, out = 8, []
    while off + 12 <= len(data):
        _, comp, _ = struct.unpack_from("<III", data, off)
        out.append(off)
        off += 12 + comp
    return out


def main():
    print("1..20")  # a fixed number of checks (an early return leaves some out: a failure)
    tmp = tempfile.mkdtemp(prefix="strata-dmg-")
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as fh:
        fh.write(SECRET)
    data = os.path.join(tmp, "data")
    srv = None
    try:
        srv = Server(data, secret)
        w1, r1 = token(1, "metrics:write"), token(1, "metrics:read")
        f = Fixture().build()
        now = int(time.time() * 1000)
        t0 = now // 60000 * 60000 - 3600000
        gpus = list(range(2, 10))
        st = [srv.write(rw1(f.tenant1), w1)[0]]
        for g in gpus:
            st.append(srv.write(rw1([(gpu_labels(g), gpu_samples(g, t0))]), w1)[0])
        tap(all(s == 204 for s in st), "fixture and 8 one-second GPU series written", st)
        c = srv.req("POST", "/api/v1/admin/cut-head", headers={"Authorization": "Bearer " + w1})[0]
        tap(c in (200, 204), "head cut into a block", c)
        srv.stop()
        srv = None
        chunks = find_files(data, "chunks")
        pages = page_offsets(chunks[0]) if len(chunks) == 1 else []
        tap(len(chunks) == 1 and len(pages) >= 3, "one block, its chunks file has several pages",
            "%s %s" % (chunks, pages))
        if len(pages) < 3:
            return
        at = pages[1] + 12 + 100
        with open(chunks[0], "r+b") as fh:
            fh.seek(at)
            b = bytearray(fh.read(4))
            fh.seek(at)
            fh.write(bytes(x ^ 0x5A for x in b))
        blockdir = os.path.dirname(chunks[0])
        with open(os.path.join(blockdir, "copy"), "r+b") as fh:
            fh.seek(0)
            c0 = fh.read(1)
            fh.seek(0)
            fh.write(bytes([c0[0] ^ 0x01]))

        # one damaged page: rebuilt from parity, served in full
        srv = Server(data, secret)
        q = "/api/v1/workloads/%s/metrics?metricType=GPU_UTILIZATION&start=%s&end=%s&numberOfSamples=60" % (
            A, iso(t0), iso(t0 + 3600000))
        st, hdrs, body = srv.get(q, r1)
        tap(st == 200 and "x-strata-warning" not in hdrs, "rebuilt page: metrics answer 200 without a warning",
            "%s %s" % (st, hdrs))
        sel = urllib.parse.quote('{__name__="DCGM_FI_DEV_GPU_UTIL",gpu=~"[2-9]",pod="train-a-0"}')
        st, _, raw = srv.get("/api/v1/export?match[]=%s&start=%d&end=%d" % (sel, t0 // 1000, now // 1000 + 1), r1)
        rows = [json.loads(x) for x in raw.decode().splitlines() if x]
        exact = [r["metric"]["gpu"] for r in rows if "values" in r
                 and r["values"] == [v for v, _ in gpu_samples(int(r["metric"]["gpu"]), t0)]
                 and r["timestamps"] == [t for _, t in gpu_samples(int(r["metric"]["gpu"]), t0)]]
        tap(st == 200 and len(rows) == len(gpus) and sorted(exact) == sorted(str(g) for g in gpus),
            "rebuilt page: export gives every GPU series exactly, no warning or error line",
            "%s %s %s" % (st, exact, [r for r in rows if "values" not in r]))
        st, _, text = srv.get("/metrics", r1)
        lines = [x for x in text.decode().splitlines() if "block_" in x and not x.startswith("#")]
        tap(has_metric_line(text, "strata_block_pages_rebuilt_total 1"), "/metrics: strata_block_pages_rebuilt_total 1",
            lines)
        tap(has_metric_line(text, "strata_block_pages_damaged_total 0"), "/metrics: strata_block_pages_damaged_total 0",
            lines)
        tap(has_metric_line(text, 'strata_block_files_repaired_total{file="copy"} 1'),
            '/metrics: strata_block_files_repaired_total{file="copy"} 1 (the damaged copy rewritten)', lines)
        srv.stop()
        srv = None

        # the same bytes in the parity file: that group has two damaged members
        with open(os.path.join(blockdir, "parity"), "r+b") as fh:
            width = struct.unpack_from("<I", fh.read(24), 16)[0]
            for i in range(4):
                fh.seek(24 + (at + i) % width)
                p = fh.read(1)
                fh.seek(24 + (at + i) % width)
                fh.write(bytes([p[0] ^ 0x5A]))
        srv = Server(data, secret)
        tap(len(find_files(data, "chunks")) == 1 and not any("corrupt" in d for d, _, _ in os.walk(data)),
            "the block stays in place after restart (nothing set aside)")
        st, _, _ = srv.get("/api/v1/workloads/" + A, r1)
        tap(st == 200, "the workload is still known (its info series lie in undamaged pages)", st)

        st, hdrs, body = srv.get(q, r1)
        warn = hdrs.get("x-strata-warning", "")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        tap(st == 200 and warn.endswith(" damaged block pages skipped") and int(warn.split()[0]) >= 1
            and isinstance(doc, dict) and "measurements" in doc,
            "metrics answer: 200 with X-Strata-Warning: <n> damaged block pages skipped",
            "%s %s %s" % (st, hdrs, body[:300]))

        st, _, text = srv.get("/metrics", r1)
        lines = text.decode().splitlines()
        tap(has_metric_line(text, "strata_block_pages_damaged_total 1"), "/metrics: strata_block_pages_damaged_total 1",
            [x for x in lines if "damaged" in x])
        tap(has_metric_line(text, "strata_metrics_queries_damaged_total 1"), "/metrics: strata_metrics_queries_damaged_total 1",
            [x for x in lines if "damaged" in x])
        tap(has_metric_line(text, "strata_block_pages_rebuilt_total 0"), "/metrics: strata_block_pages_rebuilt_total 0",
            [x for x in lines if "block_" in x])

        st, _, raw = srv.get("/api/v1/export?match[]=%s&start=%d&end=%d" % (sel, t0 // 1000, now // 1000 + 1), r1)
        rows = [json.loads(x) for x in raw.decode().splitlines() if x]
        series = {r["metric"]["gpu"]: r for r in rows if "values" in r}
        warned = [r["metric"]["gpu"] for r in rows if "warning" in r]
        exact = [g for g in gpus if str(g) not in warned and str(g) in series
                 and series[str(g)]["values"] == [v for v, _ in gpu_samples(g, t0)]
                 and series[str(g)]["timestamps"] == [t for _, t in gpu_samples(g, t0)]]
        tap(st == 200 and rows and set(rows[-1]) == {"error"} and rows[-1]["error"].startswith("export incomplete"),
            "export ends with an {\"error\": \"export incomplete: ...\"} line", rows[-1:] if rows else raw[:200])
        tap(1 <= len(warned) < len(gpus) and len(exact) == len(gpus) - len(warned),
            "export: a warning line for each damaged series, every other series exact",
            "warned %s exact %s\n%s" % (warned, exact, [(g, len(series[g]["values"])) for g in series]))
        partial_ok = all(set(zip(series[g]["timestamps"], series[g]["values"])) <
                         set((t, v) for v, t in gpu_samples(int(g), t0)) for g in warned if g in series)
        tap(partial_ok, "export: a damaged series' line holds only samples it really had")
        # the warning follows its series' line
        order_ok = all(i > 0 and rows[i - 1].get("metric") == rows[i]["metric"] and "values" in rows[i - 1]
                       for i, r in enumerate(rows) if "warning" in r and r["metric"]["gpu"] in series)
        tap(order_ok, "export: each warning line comes right after its series' line")
        st, _, raw = srv.get("/api/v1/export?match[]=%s" % urllib.parse.quote('{__name__="runai_workload_info"}'), r1)
        rows = [json.loads(x) for x in raw.decode().splitlines() if x]
        tap(st == 200 and rows and all("values" in r for r in rows), "an export that meets no damage has no error line",
            rows[-1:])
        tap(len(find_files(data, "chunks")) == 1 and not any("corrupt" in d for d, _, _ in os.walk(data)),
            "after those reads the block is still in place (not moved to corrupt/)")
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
