#!/usr/bin/env python3
"""test_ingest_retention.py: samples older than the retention window.

A sample older than now - --retention (with --retention=0, before the Unix
epoch) is refused with a 400 and counted as too_old_for_retention; the valid
rest of the request is stored.  And whatever the head holds, the background
cut keeps making blocks: one sample at 1 ms (accepted with --retention=0)
followed by an 8 h backfill is cut into blocks within seconds, not stalled.
Reuses the wire helpers and the Server of test_ingest_http.py; prints TAP lines.
"""
import os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ingest_http as h  # noqa: E402
from strata_client import metric_value  # noqa: E402

tap, rw1, token = h.tap, h.rw1, h.token
INT64_MIN = -(1 << 63)
DAY = 86400 * 1000


def gauge(srv, tok, name):
    st, _, data = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + tok})
    return metric_value(data, name) if st == 200 else None


def main():
    print("1..11")  # a fixed number of checks
    if not os.access(h.BIN, os.X_OK):
        tap(False, "strata binary exists at " + h.BIN)
        return 1
    tmp = tempfile.mkdtemp(prefix="strata-it-ret-")
    keyfile = os.path.join(tmp, "secret")
    with open(keyfile, "wb") as f:
        f.write(h.SECRET + b"\n")
    w1, r1 = token(1, "metrics:write"), token(1, "metrics:read")
    now = (int(time.time()) - 60) * 1000
    srv = None
    try:
        # ---- default --retention (15d)
        srv = h.Server(os.path.join(tmp, "data"), keyfile)
        h.check_error("sample at 1 ms -> 400 too_old_for_retention",
                      srv.write(rw1([([("__name__", "ancient")], [(1.0, 1)])]), w1), 400,
                      'series {__name__="ancient"}: sample timestamp 1 is older than the retention window '
                      '(--retention 15d)',
                      "rejected: too_old_for_retention=1; samples written: 0")
        h.check_error("sample at INT64_MIN -> 400 too_old_for_retention",
                      srv.write(rw1([([("__name__", "ancient")], [(1.0, INT64_MIN)])]), w1), 400,
                      'series {__name__="ancient"}: sample timestamp %d is older than the retention window '
                      '(--retention 15d)' % INT64_MIN,
                      "rejected: too_old_for_retention=1; samples written: 0")
        h.check_error("16 days old -> 400; the valid rest of the request is stored",
                      srv.write(rw1([([("__name__", "mix")], [(1.0, now - 16 * DAY), (2.0, now)]),
                                     ([("__name__", "fine")], [(3.0, now)])]), w1), 400,
                      'series {__name__="mix"}: sample timestamp %d is older than the retention window '
                      '(--retention 15d)' % (now - 16 * DAY),
                      "rejected: too_old_for_retention=1; samples written: 2")
        st, _, _ = srv.write(rw1([([("__name__", "backfill")], [(4.0, now - 14 * DAY)])]), w1)
        tap(st == 204, "a new series may start anywhere inside the retention (14 days back) -> 204", st)
        st, got = srv.export("mix", r1)
        st2, got2 = srv.export("ancient", r1)
        tap(st == 200 and [g["values"] for g in got] == [[2]] and st2 == 200 and got2 == [],
            "only the samples inside the retention were stored", "%s %s %s" % (got, st2, got2))
        v = gauge(srv, r1, 'strata_rejected_samples_total{reason="too_old_for_retention"}')
        tap(v == 3, "/metrics counts too_old_for_retention", v)
        srv.stop()
        srv = None

        # ---- --retention=0 (keep forever): only the Unix epoch bounds the past
        srv = h.Server(os.path.join(tmp, "forever"), keyfile, ["--retention=0", "--block-duration=2h"])
        h.check_error("--retention=0: a sample before the Unix epoch -> 400",
                      srv.write(rw1([([("__name__", "pre")], [(1.0, -1), (2.0, now)])]), w1), 400,
                      'series {__name__="pre"}: sample timestamp -1 is before the Unix epoch',
                      "rejected: too_old_for_retention=1; samples written: 1")
        st, _, _ = srv.write(rw1([([("__name__", "bf")], [(42.0, 1)])]), w1)
        tap(st == 204, "--retention=0: a sample at 1 ms is kept -> 204", st)
        # 8 h of minutely samples after it, on the same series and another one
        t0 = (now - 9 * 3600 * 1000) // 60000 * 60000
        pts = [(float(i), t0 + i * 60000) for i in range(8 * 60 + 1)]
        ok = True
        for k in range(0, len(pts), 120):
            st, _, data = srv.write(rw1([([("__name__", "bf")], pts[k:k + 120]),
                                         ([("__name__", "bf2")], pts[k:k + 120])]), w1)
            ok = ok and st == 204
        tap(ok, "an 8 h backfill after the ancient sample is accepted", st)
        # the cut runs in the background: wait for it to reach both figures, not only the first
        blocks, head, deadline = None, None, time.time() + 20
        while time.time() < deadline:
            blocks = gauge(srv, r1, "strata_blocks")
            head = gauge(srv, r1, "strata_head_samples")
            if blocks and blocks >= 2 and head is not None and head <= 2 * (3 * 60 + 1):
                break
            time.sleep(0.2)
        tap(blocks is not None and blocks >= 2 and head is not None and head <= 2 * (3 * 60 + 1),
            "the head is cut despite the ancient sample (its own block + the backfill's)",
            "blocks=%s head_samples=%s" % (blocks, head))
        st, got = srv.export("bf", r1)
        tap(st == 200 and len(got) == 1 and got[0]["timestamps"] == [1] + [t for _, t in pts]
            and got[0]["values"] == [42] + [v for v, _ in pts],
            "every sample is still readable", "%s %s" % (st, str(got)[:300]))
        srv.stop()
        srv = None
    finally:
        if srv:
            srv.proc.kill()
            srv.proc.wait()
        if h.FAILS:
            for name in os.listdir(tmp):
                if name.endswith(".log"):
                    with open(os.path.join(tmp, name)) as f:
                        for line in f.read().splitlines()[-15:]:
                            print("# log: " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if h.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
