#!/usr/bin/env python3
"""test_reports_api.py: consumption reports end to end through the real strata daemon.

A fixture cluster spanning three UTC days (2025-03-10..12) is pushed by remote write (RW 1.0,
one request per hour of data, chronological), then reports are created over HTTP, polled until
Ready, downloaded and diffed against tests/golden/reports/*.csv, whose numbers were worked out
by hand (tests/golden/reports/README.md shows the arithmetic).  Also: the lifecycle (202, 409
before Ready, delete then 404, duplicate names), every bad body, list/count/get parameters,
scopes, tenant isolation with two JWT tenants, and a kill -9 while a report is Processing
(it must come back Ready with the same CSV as a clean run).  Every JSON body is validated
against the Run:ai spec page at run time (tests/lib/spec_schema.py); list/count have no page
in the spec, so their items are validated as Report and their errors as Error.

The daemon runs with --retention=0 so the fixed 2025 dates are never dropped; the
slow-worker part uses the test-only --report-worker-delay flag.  Prints TAP lines.
"""
import calendar, difflib, json, os, re, shutil, signal, subprocess, sys, tempfile, time
import http.client
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import jsonschema  # noqa: E402
from spec_schema import Spec  # noqa: E402
from strata_client import rw1, snappy, STALE, token, free_port, SECRET, stop_process  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "strata")
GOLDEN = os.path.join(ROOT, "tests", "golden", "reports")
SPEC = Spec.load("reports")
FAILS = 0
TAPS = 0  # checks run: the trailing TAP plan "1..TAPS" (tests/run_tests.sh compares)

MIN, HOUR, DAY = 60000, 3600000, 86400000
D0 = calendar.timegm((2025, 3, 10, 0, 0, 0)) * 1000
GIB, MIB = 1 << 30, 1 << 20
C1 = "0c1a0000-0000-4000-8000-000000000001"
C2 = "0c2b0000-0000-4000-8000-000000000002"
REPORTS = "/api/v1/org-unit/reports"


def tap(ok, name, info=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[:40]:
            print("#   " + line)
    sys.stdout.flush()
    return ok


def at(day, h, m=0):
    return D0 + day * DAY + h * HOUR + m * MIN


# ---- the fixture -------------------------------------------------------------------------

def gauge(labels, a, b, value):
    """One sample a minute in [a, b) with value(t), then a stale marker at b (the value ends there)."""
    return (labels, [(float(value(t)), t) for t in range(a, b, MIN)] + [(STALE, b)])


def counter(labels, a, b, value):
    """Counter samples a minute from a to b inclusive (counters are not held, so no stale marker)."""
    return (labels, [(float(value(t)), t) for t in range(a, b + MIN, MIN)])


def workload(wid, name, dept, project, cluster, nodepools, ns, pod, a, b, alloc=None, gpus=(),
             gpu_by_id=False, cpu_req=None, mem_req=None, cpu_use=None, mem_use=None, extra=()):
    """Series of one workload, all in [a, b).  gpus: [(util(t), fb_mib)], joined by (namespace, pod)
    unless gpu_by_id (then they carry workload_id).  cpu_use(t): the counter's value."""
    info = [("__name__", "runai_workload_info"), ("workload_id", wid), ("workload_name", name),
            ("workload_type", "training"), ("department_id", dept[0]), ("department_name", dept[1]),
            ("project_id", project[0]), ("project_name", project[1]), ("cluster_id", cluster),
            ("namespace", ns), ("current_nodepools", nodepools), ("requested_nodepools", nodepools)]
    out = [gauge(info, a, b, lambda t: 1),
           gauge([("__name__", "runai_pod_info"), ("namespace", ns), ("pod", pod),
                  ("workload_id", wid), ("node", "node-1"), ("nodepool", nodepools.split(",")[0])],
                 a, b, lambda t: 1)]
    if alloc is not None:
        out.append(gauge([("__name__", "runai_workload_gpu_allocation"), ("workload_id", wid)],
                         a, b, lambda t: alloc))
    for g, (util, fb) in enumerate(gpus):
        who = [("workload_id", wid)] if gpu_by_id else [("namespace", ns), ("pod", pod)]
        base = [("gpu", str(g)), ("UUID", "GPU-%s-%d" % (wid[:8], g)), ("Hostname", "node-1")] + who
        out.append(gauge([("__name__", "DCGM_FI_DEV_GPU_UTIL")] + base, a, b, util))
        out.append(gauge([("__name__", "DCGM_FI_DEV_FB_USED")] + base, a, b, lambda t, fb=fb: fb))
    ctr = [("namespace", ns), ("pod", pod), ("container", "main")]
    if cpu_req is not None:
        out.append(gauge([("__name__", "kube_pod_container_resource_requests"), ("resource", "cpu"),
                          ("unit", "core")] + ctr, a, b, lambda t: cpu_req))
    if mem_req is not None:
        out.append(gauge([("__name__", "kube_pod_container_resource_requests"), ("resource", "memory"),
                          ("unit", "byte")] + ctr, a, b, lambda t: mem_req))
    if cpu_use is not None:
        out.append(counter([("__name__", "container_cpu_usage_seconds_total"), ("cpu", "total")] + ctr,
                           a, b, cpu_use))
    if mem_use is not None:
        out.append(gauge([("__name__", "container_memory_working_set_bytes")] + ctr, a, b, mem_use))
    return out + list(extra)


def tenant1_series():
    s = []
    # W1, day 0 10:00-13:30: 2 GPUs (50% and 100%, 1024 MiB), 4 cores, 8 GiB requested, 1 core
    # used (+60 s a minute), 2 GiB working set.  The pause container's counter and the pod
    # cgroup's working set (no container label) must be ignored.
    a, b = at(0, 10), at(0, 13, 30)
    ns, pod = "runai-team-a", "train-a-0"
    s += workload("a1000000-0000-4000-8000-000000000001", "train-a", ("1", "research"), ("11", "team-a"),
                  C1, "pool-a", ns, pod, a, b, alloc=2, gpus=[(lambda t: 50, 1024), (lambda t: 100, 1024)],
                  cpu_req=4, mem_req=8 * GIB, cpu_use=lambda t: 60 * (t - a) // MIN, mem_use=lambda t: 2 * GIB,
                  extra=[counter([("__name__", "container_cpu_usage_seconds_total"), ("namespace", ns),
                                  ("pod", pod), ("container", "POD")], a, b, lambda t: 6000 * (t - a) // MIN),
                         gauge([("__name__", "container_memory_working_set_bytes"), ("namespace", ns),
                                ("pod", pod)], a, b, lambda t: 64 * GIB)])
    # W2, day 0 22:00 -> day 1 02:00 (crosses midnight): 1 GPU idle (0%) joined by workload_id,
    # 512 MiB; 1 core, 2 GiB requested; counter from 1000, +30 s a minute; 1 GiB working set.
    a, b = at(0, 22), at(1, 2)
    s += workload("a2000000-0000-4000-8000-000000000002", "infer-b", ("1", "research"), ("12", "team-b"),
                  C1, "pool-b", "runai-team-b", "infer-b-0", a, b, alloc=1, gpus=[(lambda t: 0, 512)],
                  gpu_by_id=True, cpu_req=1, mem_req=2 * GIB, cpu_use=lambda t: 1000 + 30 * (t - a) // MIN,
                  mem_use=lambda t: GIB)
    # W3, day 1 09:00-12:00, other cluster and department: 0.5 GPU at 0% until 10:00 then 80%,
    # 4096 MiB; 1 core, 4 GiB requested; a counter reset at 10:30 (2670 -> 30); working set
    # 1 GiB until 10:30, then 3 GiB.
    a, b = at(1, 9), at(1, 12)
    r = at(1, 10, 30)
    s += workload("a3000000-0000-4000-8000-000000000003", "notebook-c", ("2", "ops"), ("13", "team-c"),
                  C2, "pool-a", "runai-team-c", "notebook-c-0", a, b, alloc=0.5,
                  gpus=[(lambda t: 0 if t < at(1, 10) else 80, 4096)], cpu_req=1, mem_req=4 * GIB,
                  cpu_use=lambda t: 30 * (t - a) // MIN if t < r else 30 * ((t - r) // MIN + 1),
                  mem_use=lambda t: GIB if t < r else 3 * GIB)
    # W4, day 1 12:00-18:00: CPU only (no GPU series at all): 2 cores requested, 2 used, 512 MiB.
    a, b = at(1, 12), at(1, 18)
    s += workload("a4000000-0000-4000-8000-000000000004", "cpu-job-d", ("1", "research"), ("12", "team-b"),
                  C1, "pool-b", "runai-team-b", "cpu-job-d-0", a, b, cpu_req=2,
                  cpu_use=lambda t: 120 * (t - a) // MIN, mem_use=lambda t: 512 * MIB)
    # W5, day 2 00:00-06:00: 4 GPUs, two busy and two idle, 2048 MiB each; nodepools
    # "pool-b,pool-a" (the first counts); no CPU series.
    a, b = at(2, 0), at(2, 6)
    s += workload("a5000000-0000-4000-8000-000000000005", "train-e", ("1", "research"), ("11", "team-a"),
                  C1, "pool-b,pool-a", "runai-team-a", "train-e-0", a, b, alloc=4,
                  gpus=[(lambda t: 100, 2048), (lambda t: 100, 2048), (lambda t: 0, 2048), (lambda t: 0, 2048)])
    return s


def tenant2_series():
    # Same names, namespace and pod as tenant 1's W1: nothing may leak across tenants.
    a, b = at(0, 10), at(0, 11)
    return workload("b9000000-0000-4000-8000-000000000009", "train-a", ("1", "research"), ("11", "team-a"),
                    C1, "pool-a", "runai-team-a", "train-a-0", a, b, alloc=3, gpus=[(lambda t: 10, 100)])


def push(srv, series, tok):
    """Sends the series an hour of data at a time, in time order (per-series order holds)."""
    lo = min(t for _, smp in series for _, t in smp)
    hi = max(t for _, smp in series for _, t in smp)
    n = 0
    for w0 in range(lo - lo % HOUR, hi + 1, HOUR):
        part = [(lab, [(v, t) for v, t in smp if w0 <= t < w0 + HOUR]) for lab, smp in series]
        part = [p for p in part if p[1]]
        if not part:
            continue
        h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
             "X-Prometheus-Remote-Write-Version": "0.1.0"}
        if tok:
            h["Authorization"] = "Bearer " + tok
        st, _, body = srv.req("POST", "/api/v1/write", snappy(rw1(part)), h)
        if st != 204:
            return "write of hour %d answered %d %s" % ((w0 - D0) // HOUR, st, body[:200])
        n += sum(len(p[1]) for p in part)
    return n


# ---- the report cases: golden file, body --------------------------------------------------

def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


FULL = {"start": iso(at(0, 0)), "end": iso(at(3, 0))}
CASES = [
    ("none", dict(FULL)),
    ("project", dict(FULL, groupBy="Project")),
    ("department", dict(FULL, groupBy="Department")),
    ("cluster", dict(FULL, groupBy="Cluster")),
    ("nodepool", dict(FULL, groupBy="Nodepool")),
    ("filter-project", dict(FULL, filterBy=["projectName==team-a"])),
    ("filter-department", dict(FULL, groupBy=None, filterBy=["departmentName==ops"])),
    ("filter-cluster-by-project", dict(FULL, groupBy="Project", filterBy=["clusterId==" + C1])),
    ("filter-or-and", dict(FULL, filterBy=["projectName==team-a", "projectName==team-c",
                                           "departmentName==research"])),
    ("partial", {"start": "2025-03-10T13:00:00+01:00", "end": "2025-03-11T01:00:00Z"}),
]


def golden(name):
    with open(os.path.join(GOLDEN, name + ".csv"), newline="") as f:
        return f.read()


def same_csv(name, got):
    want = golden(name)
    if got == want:
        return True, ""
    diff = difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                "golden/" + name + ".csv", "downloaded")
    return False, "".join(diff)


# ---- server ------------------------------------------------------------------------------

class Server:
    def __init__(self, tmp, datadir, args, tag):
        self.port = free_port()
        self.datadir = datadir
        self.logpath = os.path.join(tmp, "strata-%s.log" % tag)
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(
            [BIN, "--listen=127.0.0.1:%d" % self.port, "--data-dir=" + datadir, "--retention=0",
             "--wal-fsync=never", "--log-level=warn"] + list(args), stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.req("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("strata did not become ready; log: " + open(self.logpath).read()[-2000:])

    def req(self, method, path, body=None, headers=None, tok=None):
        h = dict(headers or {})
        if tok:
            h["Authorization"] = "Bearer " + tok
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def stop(self):
        """SIGTERM; asserts exit 0 (tests/lib/strata_client.py stop_process: raises otherwise)."""
        return stop_process(self.proc, getattr(self, "logpath", None), 30)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


def jbody(data):
    try:
        return json.loads(data)
    except ValueError:
        return {"unparsable": data[:300]}


SCHEMA_ERRORS = []


def valid(method, path, status, body, error_like=None):
    """Validates a JSON body against the spec; error bodies of a status the operation does not
    document (409) are validated as the spec's Error schema (that of `error_like`)."""
    try:
        try:
            SPEC.schema(method, path, status)
            SPEC.validate(method, path, status, body)
        except KeyError:
            SPEC.validate(method, path, error_like or 400, body)
        return True
    except jsonschema.ValidationError as e:
        SCHEMA_ERRORS.append("%s %s %s: %s" % (method, path, status, e.message))
        return False


def report_item_valid(item):
    return valid("get", "/api/v1/org-unit/reports/{reportId}", 200, item)


def poll(srv, rid, tok, want=("Ready", "Failed"), timeout=60):
    deadline = time.time() + timeout
    body = None
    while time.time() < deadline:
        st, _, data = srv.req("GET", REPORTS + "/" + rid, tok=tok)
        body = jbody(data)
        if st == 200 and body.get("status") in want:
            return body
        time.sleep(0.05)
    return body


def check_error(name, resp, status, message, method, path, details=None):
    st, hdr, data = resp
    body = jbody(data)
    ok = (st == status and body.get("code") == status and body.get("message") == message
          and hdr.get("content-type", "").startswith("application/json")
          and valid(method, path, status, body))
    if details is not None:
        ok = ok and body.get("details") == details
    return tap(ok, name, "got %s %s" % (st, body))


# ---- the checks --------------------------------------------------------------------------

def golden_reports(srv, t1, t2):
    """Creates every golden case for tenant 1 (and one for tenant 2), checks 202 bodies, polls,
    downloads, diffs.  Returns {case name: report id}."""
    ids = {}
    for name, fields in CASES:
        body = dict(fields, name="golden " + name)
        st, hdr, data = srv.req("POST", REPORTS, body, tok=t1)
        r = jbody(data)
        want_fb = body.get("filterBy", [])
        ok = (st == 202 and r.get("status") == "Pending" and r.get("name") == body["name"]
              and r.get("tenantId") == 1 and r.get("createdBy") == "alice"
              and r.get("groupBy") == body.get("groupBy") and r.get("filterBy") == want_fb
              and valid("post", REPORTS, 202, r))
        tap(ok, "POST %s -> 202 Pending Report (tenant and createdBy from the token)" % name, "%s %s" % (st, r))
        ids[name] = r.get("id", "")
        tap(st == 202 and expires_ok(r, 30 * DAY),
            "POST %s: expiresAt = createdAt + --report-retention (default 30d)" % name, r)
    st, _, data = srv.req("POST", REPORTS, dict(FULL, name="golden tenant2"), tok=t2)
    r = jbody(data)
    ids["tenant2"] = r.get("id", "")
    tap(st == 202 and r.get("tenantId") == 2 and r.get("createdBy") == "bob" and valid("post", REPORTS, 202, r),
        "tenant 2 creates its report", data)
    for name in [c[0] for c in CASES] + ["tenant2"]:
        tok = t2 if name == "tenant2" else t1
        r = poll(srv, ids[name], tok)
        nrows = golden(name).count("\n") - 1
        tap(r and r.get("status") == "Ready" and r.get("statusMessage") == "Report is ready (%d rows)" % nrows
            and valid("get", REPORTS + "/{reportId}", 200, r),
            "report %s becomes Ready with its row count" % name, r)
        st, hdr, data = srv.req("GET", REPORTS + "/" + ids[name] + "/file", tok=tok)
        ok, diff = same_csv(name, data.decode("utf-8", "replace"))
        tap(st == 200 and ok, "report %s: downloaded CSV equals tests/golden/reports/%s.csv" % (name, name),
            "status %d\n%s" % (st, diff))
        want_cd = 'attachment; filename="golden %s.csv"' % name
        tap(hdr.get("content-type", "").startswith("text/csv")
            and hdr.get("content-disposition", "").startswith(want_cd)
            and hdr.get("content-length") == str(len(data)),
            "report %s file: text/csv, Content-Disposition attachment with the name, Content-Length" % name,
            hdr)
        st, hdr, data = srv.req("GET", REPORTS + "/" + ids[name] + "/file", tok=tok,
                                headers={"Accept": "application/json"})
        want = json_view(golden(name), min(iso_ms(r["statusUpdatedAt"]), iso_ms(r["end"])))
        got = jbody(data)
        tap(st == 200 and hdr.get("content-type") == "application/json" and got == want
            and "content-disposition" not in hdr,
            "report %s file with Accept: application/json -> the JSON view of the golden CSV" % name,
            "%s %s\ngot  %r\nwant %s" % (st, hdr, data[:1500], json.dumps(want)[:1500]))
    # Accept negotiation on the file: text/csv wins when it comes first or alone
    for accept, kind in [("text/csv", "csv"), ("text/csv, application/json", "csv"), ("*/*", "csv"),
                         ("application/json, text/csv;q=0.5", "json"), ("Application/JSON", "json")]:
        st, hdr, data = srv.req("GET", REPORTS + "/" + ids["project"] + "/file", tok=t1,
                                headers={"Accept": accept})
        if kind == "csv":
            ok = st == 200 and hdr.get("content-type", "").startswith("text/csv") and same_csv("project", data.decode())[0]
        else:
            ok = st == 200 and hdr.get("content-type") == "application/json" and "columns" in jbody(data)
        tap(ok, "file with Accept: %s -> %s" % (accept, kind), "%s %s %s" % (st, hdr, data[:200]))
    b = jbody(srv.req("GET", REPORTS + "/" + ids["partial"] + "/file", tok=t1,
                      headers={"Accept": "application/json"})[2])
    tap(b.get("asOf") == "2025-03-11T01:00:00Z" and [c["kind"] for c in b.get("columns", [])][:9] == ["dimension"] * 9
        and [c["kind"] for c in b.get("columns", [])][9:] == ["measure"] * 9
        and all(isinstance(x, str) for row in b.get("rows", []) for x in row[:9])
        and all(x is None or isinstance(x, (int, float)) for row in b.get("rows", []) for x in row[9:]),
        "JSON view: asOf is the report's end (generated later), dimensions strings, measures numbers or null", b)
    # HEAD gives the headers without the body
    st, hdr, data = srv.req("HEAD", REPORTS + "/" + ids["none"] + "/file", tok=t1)
    tap(st == 200 and data == b"" and hdr.get("content-length") == str(len(golden("none").encode())),
        "HEAD on the file answers its length and no body", "%s %s" % (st, hdr))
    return ids


def iso_ms(s):
    """RFC 3339 (as strata renders it: Z, optional milliseconds) -> ms."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$", s or "")
    if not m:
        return None
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or "0").ljust(3, "0")[:3]
    return calendar.timegm((y, mo, d, h, mi, se)) * 1000 + int(frac)


def expires_ok(r, retention_ms):
    c, e = iso_ms(r.get("createdAt")), iso_ms(r.get("expiresAt"))
    return c is not None and e == c + retention_ms


MEASURES = ["gpu_allocation_hours", "gpu_idle_allocated_hours", "gpu_utilization_avg_pct",
            "gpu_memory_usage_avg_bytes", "cpu_request_core_hours", "cpu_usage_core_hours",
            "cpu_memory_request_gib_hours", "cpu_memory_usage_gib_hours", "workloads"]


def json_view(csv_text, as_of_ms):
    """What GET .../file with Accept: application/json must answer for a CSV, worked out here
    with Python's csv module: measures as numbers (empty -> null), the rest strings."""
    import csv, io
    recs = list(csv.reader(io.StringIO(csv_text, newline="")))
    head, rows = recs[0], recs[1:]
    kinds = ["measure" if h in MEASURES else "dimension" for h in head]
    out_rows = []
    for row in rows:
        out = []
        for k, cell in zip(kinds, row):
            if k == "dimension":
                out.append(cell)
            else:
                out.append(None if cell == "" else json.loads(cell))
        out_rows.append(out)
    return {"columns": [{"name": h, "kind": k} for h, k in zip(head, kinds)], "rows": out_rows,
            "asOf": iso(as_of_ms)}


def raw_source(tmp, datadir, keyfile, t1):
    """The same golden cases from raw samples only (--report-source=raw, the reference the
    1h-rollup path is checked against): the same CSVs, and the log says where the days came
    from in each mode."""
    srv = Server(tmp, datadir, ["--auth=jwt", "--jwt-secret-file=" + keyfile, "--report-workers=1",
                                "--report-source=raw", "--report-retention=0", "--log-level=info"], "raw")
    try:
        for name, fields in CASES:
            st, _, data = srv.req("POST", REPORTS, dict(fields, name="raw " + name), tok=t1)
            rid = jbody(data).get("id", "")
            r = poll(srv, rid, t1)
            if name == "none":
                tap(r and "expiresAt" in r and r["expiresAt"] is None and report_item_valid(r),
                    "--report-retention=0 (kept forever): expiresAt is null", r)
            st, _, data = srv.req("GET", REPORTS + "/" + rid + "/file", tok=t1)
            ok, diff = same_csv(name, data.decode("utf-8", "replace"))
            tap(r and r.get("status") == "Ready" and st == 200 and ok,
                "report %s from raw samples (--report-source=raw) equals the golden CSV too" % name,
                "status %d\n%s" % (st, diff))
    finally:
        srv.stop()
    raw_log = open(os.path.join(tmp, "strata-raw.log")).read()
    tap("workload_days_from_rollups=0 " in raw_log and "workload_days_from_raw=0" not in raw_log,
        "--report-source=raw: every workload-day from raw samples (log)", raw_log[-600:])


def bad_bodies(srv, t1):
    P = ("post", REPORTS)
    s, e = FULL["start"], FULL["end"]
    cases = [
        ("{", "malformed JSON at line 1, column 1: string or '}' expected near end of file"),
        ("[]", "request body must be a JSON object"),
        ({"start": s, "end": e}, "name: required field is missing"),
        ({"name": 7, "start": s, "end": e}, "name: must be a string"),
        ({"name": "", "start": s, "end": e}, "name: must not be empty"),
        ({"name": "x", "end": e}, "start: required field is missing"),
        ({"name": "x", "start": s}, "end: required field is missing"),
        ({"name": "x", "start": "yesterday", "end": e},
         "start: must be an RFC 3339 date-time string (e.g. 2024-12-01T00:00:00Z)"),
        ({"name": "x", "start": s, "end": 1741564800},
         "end: must be an RFC 3339 date-time string (e.g. 2024-12-01T00:00:00Z)"),
        ({"name": "x", "start": e, "end": s}, "end: must be after start"),
        ({"name": "x", "start": s, "end": s}, "end: must be after start"),
        ({"name": "x", "start": s, "end": e, "groupBy": "project"},
         "groupBy: must be one of Nodepool, Project, Department, Cluster, or null"),
        ({"name": "x", "start": s, "end": e, "groupBy": 3},
         "groupBy: must be one of Nodepool, Project, Department, Cluster, or null"),
        ({"name": "x", "start": s, "end": e, "filterBy": "projectName==a"}, "filterBy: must be an array of strings"),
        ({"name": "x", "start": s, "end": e, "filterBy": ["projectName==a", "nodepool==x"]},
         "filterBy[1]: must match ^(projectName|departmentName|clusterId)(==).+$"),
        ({"name": "x", "start": s, "end": e, "filterBy": ["projectName!=a"]},
         "filterBy[0]: must match ^(projectName|departmentName|clusterId)(==).+$"),
        ({"name": "x", "start": s, "end": e, "filterBy": ["projectName=="]},
         "filterBy[0]: must match ^(projectName|departmentName|clusterId)(==).+$"),
        ({"name": "x", "start": s, "end": e, "filterBy": [5]},
         "filterBy[0]: must match ^(projectName|departmentName|clusterId)(==).+$"),
    ]
    for body, msg in cases:
        raw = body if isinstance(body, str) else json.dumps(body)
        check_error("bad body %s -> 400 %r" % (raw[:60], msg),
                    srv.req("POST", REPORTS, raw, {"Content-Type": "application/json"}, tok=t1),
                    400, msg, *P)
    st, _, data = srv.req("GET", REPORTS + "/count?filterBy=name=^x", tok=t1)
    tap(st == 200 and jbody(data) == {"count": 0}, "no report was stored by a bad body", data)


def list_and_count(srv, t1, t2, ids):
    n = len(CASES)
    st, _, data = srv.req("GET", REPORTS, tok=t1)
    b = jbody(data)
    reps = b.get("reports", [])
    tap(st == 200 and set(b) == {"reports"} and len(reps) == n and all(report_item_valid(r) for r in reps)
        and [r["name"] for r in reps] == ["golden " + c[0] for c in CASES],
        "GET reports: tenant 1's %d reports in creation order, no next, items valid Reports" % n, b)
    st, _, data = srv.req("GET", REPORTS + "/count", tok=t1)
    tap(st == 200 and jbody(data) == {"count": n}, "GET reports/count -> {count: %d}" % n, data)
    st, _, data = srv.req("GET", REPORTS + "?sortBy=name&sortOrder=desc&limit=3&unknownParam=1", tok=t1)
    b = jbody(data)
    names = sorted(["golden " + c[0] for c in CASES], reverse=True)
    tap(st == 200 and [r["name"] for r in b.get("reports", [])] == names[:3] and b.get("next") == 3,
        "sortBy=name desc, limit=3 -> first page and next=3 (unknown parameter ignored)", b)
    st, _, data = srv.req("GET", REPORTS + "?sortBy=name&sortOrder=desc&limit=3&offset=9", tok=t1)
    b = jbody(data)
    tap(st == 200 and [r["name"] for r in b.get("reports", [])] == names[9:] and "next" not in b,
        "offset=9 -> the last report, no next", b)
    st, _, data = srv.req("GET", REPORTS + "?search=FILTER", tok=t1)
    b = jbody(data)
    tap(st == 200 and sorted(r["name"] for r in b.get("reports", [])) ==
        sorted("golden " + c[0] for c in CASES if c[0].startswith("filter")),
        "search is a case-insensitive substring of the name", b)
    q = "filterBy=" + quote("name=@partial,status==Ready")
    st, _, data = srv.req("GET", REPORTS + "?" + q, tok=t1)
    b = jbody(data)
    tap(st == 200 and [r["name"] for r in b.get("reports", [])] == ["golden partial"],
        "filterBy=name=@partial,status==Ready", b)
    st, _, data = srv.req("GET", REPORTS + "/count?filterBy=createdBy==alice&filterBy=status!=Ready", tok=t1)
    tap(st == 200 and jbody(data) == {"count": 0}, "count with repeated filterBy terms", data)
    st, _, data = srv.req("GET", REPORTS + "?filterBy=" + quote("status==Ready"), tok=t1)
    b = jbody(data)
    tap(st == 200 and len(b.get("reports", [])) == n and all(r["status"] == "Ready" for r in b["reports"]),
        "filterBy=status==Ready lists the Ready reports", b)
    st, _, data = srv.req("GET", REPORTS + "/count?filterBy=" + quote("status==Ready"), tok=t1)
    tap(st == 200 and jbody(data) == {"count": n}, "count with filterBy=status==Ready", data)
    st, _, data = srv.req("GET", REPORTS + "/count?filterBy=" + quote("status==Pending"), tok=t1)
    tap(st == 200 and jbody(data) == {"count": 0}, "count with filterBy=status==Pending -> 0", data)
    # groupBy as a filter and sort field
    by_group = {}
    for c in CASES:
        by_group.setdefault(c[1].get("groupBy"), []).append("golden " + c[0])
    for g in ["Project", "Department", "Cluster", "Nodepool"]:
        st, _, data = srv.req("GET", REPORTS + "?filterBy=" + quote("groupBy==" + g), tok=t1)
        b = jbody(data)
        tap(st == 200 and [r["name"] for r in b.get("reports", [])] == by_group.get(g)
            and all(r["groupBy"] == g for r in b["reports"]),
            "filterBy=groupBy==%s lists the reports grouped by %s" % (g, g), b)
        st, _, data = srv.req("GET", REPORTS + "/count?filterBy=" + quote("groupBy==" + g), tok=t1)
        tap(st == 200 and jbody(data) == {"count": len(by_group.get(g, []))},
            "count with filterBy=groupBy==%s" % g, data)
    st, _, data = srv.req("GET", REPORTS + "/count?filterBy=" + quote("groupBy!=Project,status==Ready"), tok=t1)
    tap(st == 200 and jbody(data) == {"count": n - len(by_group["Project"])},
        "count with groupBy!=Project (reports without groupBy included) AND status==Ready", data)
    st, _, data = srv.req("GET", REPORTS + "?sortBy=groupBy", tok=t1)
    got = [(r["groupBy"], r["name"]) for r in jbody(data).get("reports", [])]
    order = {None: 0, "Cluster": 1, "Department": 2, "Nodepool": 3, "Project": 4}
    want = sorted([(c[1].get("groupBy"), "golden " + c[0]) for c in CASES], key=lambda x: order[x[0]])
    tap(st == 200 and got == want, "sortBy=groupBy: none first, then by name, ties in creation order", got)
    st, _, data = srv.req("GET", REPORTS + "?sortBy=groupBy&sortOrder=desc&limit=2", tok=t1)
    tap(st == 200 and [r["groupBy"] for r in jbody(data).get("reports", [])] == ["Project", "Project"],
        "sortBy=groupBy desc: Project first", data)
    for q, msg in [("limit=0", "invalid limit parameter"), ("limit=501", "invalid limit parameter"),
                   ("offset=-1", "invalid offset parameter"), ("limit=x", "invalid limit parameter"),
                   ("sortBy=size", "sortBy: must be one of name, status, createdAt, createdBy, groupBy"),
                   ("sortOrder=up", "sortOrder: must be asc or desc"),
                   ("filterBy=size==1", 'filterBy: invalid term "size==1": unknown field "size" (name, status, createdAt, createdBy, groupBy)'),
                   ("filterBy=groupBy==project", 'filterBy: invalid term "groupBy==project": groupBy must be one of Nodepool, Project, Department, Cluster'),
                   ("filterBy=createdAt>=soon", 'filterBy: invalid term "createdAt>=soon": "soon" is not an RFC 3339 date-time')]:
        st, _, data = srv.req("GET", REPORTS + "?" + q, tok=t1)
        b = jbody(data)
        tap(st == 400 and b.get("message") == msg and valid("get", REPORTS + "/{reportId}", 400, b),
            "GET reports?%s -> 400 naming the parameter" % q, "%s %s" % (st, b))
    # tenant 2 sees only its own
    st, _, data = srv.req("GET", REPORTS, tok=t2)
    b = jbody(data)
    tap(st == 200 and [r["name"] for r in b.get("reports", [])] == ["golden tenant2"]
        and b["reports"][0]["tenantId"] == 2, "tenant 2 lists only its own report", b)
    st, _, data = srv.req("GET", REPORTS + "/count", tok=t2)
    tap(st == 200 and jbody(data) == {"count": 1}, "tenant 2 counts only its own report", data)


def scopes(srv, t1, tr, rid):
    """reports:write alone may create a report and read it back (poll, list, count, file);
    metrics:read alone reads; a token with neither gets 403 on every read."""
    P1 = REPORTS + "/{reportId}"
    w_only = token(1, "reports:write", sub="w")
    st, _, data = srv.req("POST", REPORTS, dict(FULL, name="scope w-only"), tok=w_only)
    wr = jbody(data)
    tap(st == 202 and wr.get("createdBy") == "w", "POST with only reports:write -> 202", data)
    wr = poll(srv, wr.get("id", ""), w_only)
    tap(wr.get("status") == "Ready" and report_item_valid(wr),
        "GET (poll) its report with only reports:write -> 200 until Ready", wr)
    for tok, who in [(w_only, "reports:write"), (tr, "metrics:read")]:
        st, hdr, data = srv.req("GET", REPORTS + "/" + wr.get("id", "") + "/file", tok=tok)
        ok, diff = same_csv("none", data.decode())
        tap(st == 200 and ok and hdr.get("content-type", "").startswith("text/csv"),
            "GET file with only %s -> 200 and the CSV" % who, "%s %s" % (st, diff or data[:200]))
        st, _, data = srv.req("GET", REPORTS + "?filterBy=" + quote("name==scope w-only"), tok=tok)
        b = jbody(data)
        tap(st == 200 and [r["id"] for r in b.get("reports", [])] == [wr.get("id")],
            "GET list with only %s -> 200" % who, data)
        st, _, data = srv.req("GET", REPORTS + "/count?filterBy=" + quote("name==scope w-only"), tok=tok)
        tap(st == 200 and jbody(data) == {"count": 1}, "GET count with only %s -> 200" % who, data)
        st, _, data = srv.req("GET", REPORTS + "/" + rid, tok=tok)
        tap(st == 200 and jbody(data).get("id") == rid, "GET one with only %s -> 200" % who, data)
    neither = token(1, "metrics:write", sub="n")
    need = "token lacks scope metrics:read or reports:write"
    for path, vpath in [(REPORTS, P1), (REPORTS + "/count", P1), (REPORTS + "/" + rid, P1),
                        (REPORTS + "/" + rid + "/file", P1 + "/file")]:
        check_error("GET %s with only metrics:write -> 403" % path.replace(rid, "{id}"),
                    srv.req("GET", path, tok=neither), 403, "insufficient scope", "get", vpath, details=need)
    check_error("POST with only metrics:write -> 403", srv.req("POST", REPORTS, dict(FULL, name="y"), tok=neither),
                403, "insufficient scope", "post", REPORTS, details="token lacks scope reports:write")
    st, _, _ = srv.req("DELETE", REPORTS + "/" + wr.get("id", ""), tok=w_only)
    tap(st == 204, "DELETE with only reports:write -> 204")


def unwritable(srv, t1, rid):
    """The reports directory replaced by a file: creating a report and opening a file fail with
    EIO -> 503 with Retry-After (the store's table in memory still answers reads)."""
    d = os.path.join(srv.datadir, "reports")
    os.rename(d, d + ".away")
    try:
        open(d, "w").close()
        for m, path, body, vpath in [("POST", REPORTS, dict(FULL, name="no room"), REPORTS),
                                     ("GET", REPORTS + "/" + rid + "/file", None, REPORTS + "/{reportId}/file")]:
            resp = srv.req(m, path, body, tok=t1)
            st, hdr, data = resp
            b = jbody(data)
            tap(st == 503 and b.get("code") == 503 and hdr.get("retry-after") == "5"
                and valid(m.lower(), vpath, 503, b),
                "%s %s with the reports directory unwritable -> 503 with Retry-After: 5" % (m, path.replace(rid, "{id}")),
                "%s %s %s" % (st, hdr, data))
    finally:
        os.unlink(d)
        os.rename(d + ".away", d)
    st, _, _ = srv.req("GET", REPORTS + "/" + rid + "/file", tok=t1)
    tap(st == 200, "the file downloads again once the directory is back", st)


def damaged(srv, t1, ids):
    """Item 7: a Ready report's CSV damaged on disk (one byte flipped; truncated) is never served:
    the download (CSV and the JSON view) answers 409 "report file damaged: ..." and the report is
    Failed with that statusMessage; an intact one still downloads, and its metadata records the
    CSV's size and SHA-256."""
    import hashlib
    P = REPORTS + "/{reportId}/file"
    d = os.path.join(srv.datadir, "reports")
    intact = ids["department"]
    with open(os.path.join(d, intact + ".json")) as f:
        rec = json.load(f).get("file", {})
    with open(os.path.join(d, intact + ".csv"), "rb") as f:
        data = f.read()
    tap(rec == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "a Ready report's metadata records its CSV's size and SHA-256", rec)
    for name, how in (("cluster", "flip"), ("nodepool", "truncate")):
        rid = ids[name]
        path = os.path.join(d, rid + ".csv")
        st, _, good = srv.req("GET", REPORTS + "/" + rid + "/file", tok=t1)  # served (and checked) once
        with open(path, "r+b") as f:
            if how == "flip":
                f.seek(len(good) // 2)
                c = f.read(1)
                f.seek(len(good) // 2)
                f.write(bytes([c[0] ^ 0x01]))
            else:
                f.truncate(len(good) - 7)
        for accept in (None, "application/json"):
            st2, hdr, data2 = srv.req("GET", REPORTS + "/" + rid + "/file", tok=t1,
                                      headers={"Accept": accept} if accept else None)
            b = jbody(data2)
            want = ("report file damaged: %d bytes on disk, %d written (truncated or appended to)"
                    % (len(good) - 7, len(good))) if how == "truncate" else None
            tap(st == 200 and st2 == 409 and b.get("code") == 409 and valid("get", P, 409, b)
                and b.get("message", "").startswith("report file damaged: ")
                and (want is None or b.get("message") == want),
                "%s CSV (%s) -> 409 report file damaged, never served%s" % (
                    "flipped byte in a" if how == "flip" else "truncated",
                    accept or "CSV", " (JSON view)" if accept else ""),
                "%s %s %s" % (st2, hdr, data2[:300]))
        r = poll(srv, rid, t1)
        tap(r.get("status") == "Failed" and r.get("statusMessage", "").startswith("report file damaged: ")
            and report_item_valid(r), "the damaged report is Failed with the reason", r)
    st, _, data = srv.req("GET", REPORTS + "/" + intact + "/file", tok=t1)
    ok, diff = same_csv("department", data.decode("utf-8", "replace"))
    tap(st == 200 and ok, "an intact report still downloads", "%s\n%s" % (st, diff))


def lifecycle(srv, t1, t2, tr, ids):
    rid = ids["none"]
    P1 = REPORTS + "/{reportId}"
    # duplicates: same tenant 409, other tenant fine
    check_error("duplicate name in the same tenant -> 409",
                srv.req("POST", REPORTS, dict(FULL, name="golden none"), tok=t1), 409,
                'a report named "golden none" already exists', "post", REPORTS)
    st, _, data = srv.req("POST", REPORTS, dict(FULL, name="golden none"), tok=t2)
    other = jbody(data).get("id", "")
    tap(st == 202, "the same name in another tenant -> 202", data)
    # tenant isolation on every per-id endpoint
    for m, suffix in [("GET", ""), ("GET", "/file"), ("DELETE", "")]:
        check_error("tenant 2 %s tenant 1's report%s -> 404" % (m, suffix),
                    srv.req(m, REPORTS + "/" + rid + suffix, tok=t2), 404, "report not found",
                    m.lower(), P1 + suffix, details=rid)
    st, _, data = srv.req("GET", REPORTS + "/" + rid, tok=t1)
    tap(st == 200 and jbody(data).get("id") == rid, "tenant 1 still has it after tenant 2's DELETE")
    for bad in ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "count2"]:
        check_error("GET report %s -> 404" % bad, srv.req("GET", REPORTS + "/" + bad, tok=t1), 404,
                    "report not found", "get", P1, details=bad)
    # scopes and tokens
    check_error("POST with only metrics:read -> 403", srv.req("POST", REPORTS, dict(FULL, name="x"), tok=tr),
                403, "insufficient scope", "post", REPORTS, details="token lacks scope reports:write")
    check_error("DELETE with only metrics:read -> 403", srv.req("DELETE", REPORTS + "/" + rid, tok=tr),
                403, "insufficient scope", "delete", P1, details="token lacks scope reports:write")
    scopes(srv, t1, tr, rid)
    st, hdr, data = srv.req("GET", REPORTS)
    tap(st == 401 and hdr.get("www-authenticate") == "Bearer" and valid("get", P1, 401, jbody(data)),
        "no token -> 401 with WWW-Authenticate", "%s %s" % (st, data))
    st, _, data = srv.req("PUT", REPORTS + "/" + rid, "{}", tok=t1)
    tap(st == 405 and jbody(data).get("code") == 405, "PUT on a report -> 405", data)
    # report ids are uuids: any letter case finds the report, which echoes its stored id
    st, _, data = srv.req("GET", REPORTS + "/" + rid.upper(), tok=t1)
    tap(st == 200 and jbody(data).get("id") == rid and valid("get", P1, 200, jbody(data)),
        "GET with the id in upper case -> 200, the stored id echoed", "%s %s" % (st, data))
    st, hdr, data = srv.req("GET", REPORTS + "/" + rid.upper() + "/file", tok=t1)
    tap(st == 200 and same_csv("none", data.decode())[0] and hdr.get("content-type") == "text/csv; charset=utf-8",
        "GET file with the id in upper case -> 200, the same CSV, text/csv; charset=utf-8", "%s %s" % (st, hdr))
    # delete: 204, then 404 everywhere, file gone from disk
    csv_path = os.path.join(srv.datadir, "reports", rid + ".csv")
    had = os.path.exists(csv_path)
    st, _, data = srv.req("DELETE", REPORTS + "/" + rid.upper(), tok=t1)
    tap(st == 204 and data == b"" and valid("delete", P1, 204, data) and had and not os.path.exists(csv_path)
        and not os.path.exists(os.path.join(srv.datadir, "reports", rid + ".json")),
        "DELETE (id in upper case) -> 204, empty body, metadata and CSV removed from the data dir",
        "%s %s had=%s" % (st, data, had))
    for m, suffix in [("GET", ""), ("GET", "/file"), ("DELETE", "")]:
        check_error("after delete: %s%s -> 404" % (m, suffix), srv.req(m, REPORTS + "/" + rid + suffix, tok=t1),
                    404, "report not found", m.lower(), P1 + suffix)
    st, _, data = srv.req("GET", REPORTS + "/count", tok=t1)
    tap(st == 200 and jbody(data) == {"count": len(CASES) - 1}, "count drops by one after the delete", data)
    unwritable(srv, t1, ids["project"])
    st, _, data = srv.req("POST", REPORTS, dict(FULL, name="golden none"), tok=t1)
    r = jbody(data)
    tap(st == 202 and r.get("id") not in (rid, other), "a deleted report frees its name (new id)", data)
    r = poll(srv, r.get("id", ""), t1)
    st, _, data = srv.req("GET", REPORTS + "/" + r.get("id", "") + "/file", tok=t1)
    ok, diff = same_csv("none", data.decode())
    tap(st == 200 and ok, "the re-created report gives the same CSV", diff)


def slow_worker(tmp):
    """--auth=none (tenant 0, "anonymous"), one worker held back by --report-worker-delay:
    409 on the file while Pending/Processing, delete cancelling a running generation, then
    kill -9 while the next one is Processing; after a restart it is Ready with the golden CSV."""
    datadir = os.path.join(tmp, "data-slow")
    srv = Server(tmp, datadir, ["--auth=none", "--report-workers=1", "--report-worker-delay=600s",
                                "--report-retention=36h"], "slow")
    try:
        n = push(srv, tenant1_series(), None)
        tap(isinstance(n, int), "fixture pushed as tenant 0 (auth none)", n)
        st, _, data = srv.req("POST", REPORTS, dict(FULL, name="slow one"))
        a = jbody(data)
        tap(st == 202 and a.get("tenantId") == 0 and a.get("createdBy") == "anonymous"
            and valid("post", REPORTS, 202, a), "auth none: tenantId 0, createdBy anonymous", a)
        body_b = dict(FULL, name="slow two", groupBy="Project")
        st, _, data = srv.req("POST", REPORTS, body_b)
        b = jbody(data)
        ra = poll(srv, a.get("id", ""), None, want=("Processing",), timeout=20)
        tap(ra and ra.get("status") == "Processing" and ra.get("statusMessage") == "Generating the report"
            and valid("get", REPORTS + "/{reportId}", 200, ra), "the first report is Processing", ra)
        F = REPORTS + "/{reportId}/file"
        for accept in [None, "application/json"]:
            h = {"Accept": accept} if accept else {}
            what = " (Accept: %s)" % accept if accept else ""
            resp = srv.req("GET", REPORTS + "/" + a["id"] + "/file", headers=h)
            check_error("file while Processing -> 409" + what, resp, 409,
                        "report is not ready (status Processing)", "get", F)
            tap(resp[1].get("retry-after") == "5", "409 while Processing carries Retry-After: 5" + what, resp[1])
            resp = srv.req("GET", REPORTS + "/" + b["id"] + "/file", headers=h)
            check_error("file while Pending -> 409" + what, resp, 409,
                        "report is not ready (status Pending)", "get", F)
            tap(resp[1].get("retry-after") == "5", "409 while Pending carries Retry-After: 5" + what, resp[1])
        check_error("unknown report's JSON view -> 404",
                    srv.req("GET", REPORTS + "/" + C1 + "/file", headers={"Accept": "application/json"}), 404,
                    "report not found", "get", F)
        tap(expires_ok(a, 36 * HOUR), "--report-retention=36h: expiresAt = createdAt + 36h", a)
        st, _, data = srv.req("GET", REPORTS + "?filterBy=" + quote("name==slow one"))
        tap(st == 200 and [expires_ok(x, 36 * HOUR) for x in jbody(data).get("reports", [])] == [True],
            "list items carry expiresAt too", data)
        st, _, _ = srv.req("DELETE", REPORTS + "/" + a["id"])
        rb = poll(srv, b.get("id", ""), None, want=("Processing",), timeout=20)
        tap(st == 204 and rb and rb.get("status") == "Processing",
            "DELETE of the Processing report -> 204 and cancels it: the worker takes the next one", rb)
        st, _, _ = srv.req("GET", REPORTS + "/" + a["id"])
        leftovers = [f for f in os.listdir(os.path.join(datadir, "reports")) if f.startswith(a["id"])]
        tap(st == 404 and not leftovers, "the cancelled report is gone (404, no files)", leftovers)
        srv.kill9()
        tmps = [f for f in os.listdir(os.path.join(datadir, "reports")) if f.endswith(".tmp")]
        srv = Server(tmp, datadir, ["--auth=none", "--report-workers=1"], "slow")
        r = poll(srv, b["id"], None)
        tap(r and r.get("status") == "Ready", "after kill -9 while Processing, the report is Ready after restart "
            "(temp files left by the crash: %d)" % len(tmps), r)
        st, _, data = srv.req("GET", REPORTS + "/" + b["id"] + "/file")
        ok, diff = same_csv("project", data.decode())
        tap(st == 200 and ok, "its CSV is the one a clean run gives (golden project.csv)", diff)
        st, _, data = srv.req("GET", REPORTS)
        tap(st == 200 and [x["name"] for x in jbody(data).get("reports", [])] == ["slow two"],
            "only the surviving report is listed after the restart", data)
    finally:
        rc = srv.stop()
        tap(rc == 0, "SIGTERM -> exit 0 (slow-worker daemon)", rc)


def utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def hand_made_report(datadir, rid, name, start, end, status, seq, attempts=0):
    """Writes a report's metadata file as an older version (or a crash) would have left it."""
    now = utc(int(time.time() * 1000))
    meta = {"format": 1, "seq": seq, "report": {
        "id": rid, "name": name, "tenantId": 0, "createdBy": "anonymous", "createdAt": now,
        "start": start, "end": end, "groupBy": None, "filterBy": [], "status": status,
        "statusUpdatedAt": now, "statusMessage": "Generating the report"}}
    if attempts:
        meta["attempts"] = attempts
    os.makedirs(os.path.join(datadir, "reports"), exist_ok=True)
    with open(os.path.join(datadir, "reports", rid + ".json"), "w") as f:
        json.dump(meta, f)


def hardening(tmp):
    """The hardening issue: a report over a huge range is refused (400 naming the bound: the
    Unix epoch with --retention=0, now - --retention otherwise, now + 10m for the end), names
    are at most 256 bytes, and reports an older version accepted (the far range) or that
    crashed the daemon 3 times are Failed at start instead of generated again."""
    datadir = os.path.join(tmp, "data-hard")
    P = ("post", REPORTS)
    far_id = "fa000000-0000-4000-8000-000000000001"
    crashy_id = "fa000000-0000-4000-8000-000000000002"
    hand_made_report(datadir, far_id, "far", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "Processing", 100)
    hand_made_report(datadir, crashy_id, "crashy", FULL["start"], FULL["end"], "Processing", 101, attempts=3)
    srv = Server(tmp, datadir, ["--auth=none", "--report-workers=1"], "hard")
    try:
        r = poll(srv, far_id, None, want=("Failed",), timeout=10)
        tap(r and r.get("status") == "Failed" and r.get("statusMessage") ==
            "Cannot be generated: start: must not be before 1970-01-01T00:00:00Z (the Unix epoch)"
            and valid("get", REPORTS + "/{reportId}", 200, r),
            "a far report left Processing by an older version is Failed at start, not run again", r)
        r = poll(srv, crashy_id, None, want=("Failed",), timeout=10)
        tap(r and r.get("statusMessage") ==
            "Generation was interrupted 3 times (the daemon stopped during it); not tried again",
            "a report interrupted by 3 crashes is Failed at start", r)
        check_error("far range -> 400 naming the epoch",
                    srv.req("POST", REPORTS, {"name": "far2", "start": "0001-01-01T00:00:00Z",
                                              "end": "9999-12-31T23:59:59Z"}),
                    400, "start: must not be before 1970-01-01T00:00:00Z (the Unix epoch)", *P)
        st, _, data = srv.req("POST", REPORTS, {"name": "future", "start": FULL["start"],
                                                "end": utc(int(time.time() * 1000) + 2 * HOUR)})
        b = jbody(data)
        tap(st == 400 and re.match(r"^end: must not be after \S+Z \(now \+ 10m: no samples can exist later\)$",
                                   b.get("message", "")) and valid("post", REPORTS, 400, b),
            "end 2h in the future -> 400 naming now + 10m", b)
        st, _, data = srv.req("POST", REPORTS, {"name": "soon", "start": FULL["start"],
                                                "end": utc(int(time.time() * 1000) + 5 * MIN)})
        tap(st == 202, "end 5 minutes in the future is allowed", data)
        check_error("a 257-byte name -> 400", srv.req("POST", REPORTS, dict(FULL, name="n" * 257)),
                    400, "name: must be at most 256 bytes (UTF-8), got 257", *P)
        check_error("a 2 MB name -> 400", srv.req("POST", REPORTS, dict(FULL, name="n" * (2 << 20))),
                    400, "name: must be at most 256 bytes (UTF-8), got 2097152", *P)
        check_error("129 two-byte characters (258 bytes) -> 400",
                    srv.req("POST", REPORTS, dict(FULL, name="\u00e9" * 129)),
                    400, "name: must be at most 256 bytes (UTF-8), got 258", *P)
        st, _, data = srv.req("POST", REPORTS, dict(FULL, name="\u00e9" * 128))
        tap(st == 202 and jbody(data).get("name") == "\u00e9" * 128, "a 256-byte name is accepted", data)
        st, _, data = srv.req("POST", REPORTS, {"name": "since 1970", "start": "1970-01-01T00:00:00Z",
                                                "end": utc(int(time.time() * 1000))})
        r = poll(srv, jbody(data).get("id", ""), None, timeout=60)
        tap(st == 202 and r and r.get("status") == "Ready" and r.get("statusMessage") == "Report is ready (0 rows)",
            "--retention=0: a report from the epoch to now is generated (56 years, a month at a time)", r)
    finally:
        rc = srv.stop()
        tap(rc == 0, "SIGTERM -> exit 0 (hardening daemon)", rc)
    srv = Server(tmp, datadir, ["--auth=none", "--retention=1d", "--report-workers=1",
                                "--report-worker-delay=600s"], "hard")
    try:
        r = poll(srv, far_id, None, want=("Failed",), timeout=10)
        tap(r and r.get("status") == "Failed", "the far report stays Failed after another restart", r)
        st, _, data = srv.req("POST", REPORTS, {"name": "old", "start": utc(int(time.time() * 1000) - 2 * DAY),
                                                "end": utc(int(time.time() * 1000))})
        b = jbody(data)
        tap(st == 400 and re.match(r"^start: must not be before \S+Z \(now - the store's retention of 1d: older "
                                   r"samples are deleted\)$", b.get("message", "")),
            "--retention=1d: a start 2 days ago -> 400 naming the retention", b)
        st, _, data = srv.req("POST", REPORTS, {"name": "recent", "start": utc(int(time.time() * 1000) - 12 * HOUR),
                                                "end": utc(int(time.time() * 1000))})
        rid = jbody(data).get("id", "")
        r = poll(srv, rid, None, want=("Processing",), timeout=20)
        tap(st == 202 and r and r.get("status") == "Processing", "a start 12 hours ago is accepted", data)
        t0 = time.time()
        rc = srv.stop()
        took = time.time() - t0
        tap(rc == 0 and took < 2.0, "SIGTERM while a report is Processing exits within 2 s (%.2f s)" % took, rc)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    st = json.load(open(os.path.join(datadir, "reports", rid + ".json")))
    tap(st["report"]["status"] == "Pending" and not st.get("attempts"),
        "the report interrupted by SIGTERM is Pending, and a clean shutdown is not counted as an attempt", st)


def main():
    if not os.access(BIN, os.X_OK):
        tap(False, "strata binary exists at " + BIN)
        return 1
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    tap(all(f in out.stdout for f in ("--report-retention", "--report-workers", "--report-worker-delay")),
        "--help lists --report-retention, --report-workers, --report-worker-delay")
    tmp = tempfile.mkdtemp(prefix="strata-reports-")
    keyfile = os.path.join(tmp, "secret")
    with open(keyfile, "wb") as f:
        f.write(SECRET + b"\n")
    srv = None
    t0 = time.time()
    try:
        srv = Server(tmp, os.path.join(tmp, "data"), ["--auth=jwt", "--jwt-secret-file=" + keyfile,
                                                      "--report-workers=2", "--log-level=info"], "jwt")
        t1 = token(1, "metrics:write metrics:read reports:write", sub="alice")
        t2 = token(2, "metrics:write metrics:read reports:write", sub="bob")
        tr = token(1, "metrics:read", sub="carol")
        n1 = push(srv, tenant1_series(), t1)
        n2 = push(srv, tenant2_series(), t2)
        tap(isinstance(n1, int) and isinstance(n2, int),
            "fixture pushed by remote write (tenant 1: %s samples, tenant 2: %s)" % (n1, n2), "%s %s" % (n1, n2))
        ids = golden_reports(srv, t1, t2)
        log = open(os.path.join(tmp, "strata-jwt.log")).read()
        fast = sum(int(x) for x in re.findall(r"workload_days_from_rollups=(\d+)", log))
        slow = sum(int(x) for x in re.findall(r"workload_days_from_raw=(\d+)", log))
        tap(fast > 0 and slow == 0, "the golden reports were summed from 1h rollups (log: %d "
            "workload-days from rollups, %d from raw samples)" % (fast, slow), log[-600:])
        bad_bodies(srv, t1)
        list_and_count(srv, t1, t2, ids)
        lifecycle(srv, t1, t2, tr, ids)
        damaged(srv, t1, ids)
        rc = srv.stop()
        srv = None
        tap(rc == 0, "SIGTERM -> exit 0", rc)
        raw_source(tmp, os.path.join(tmp, "data"), keyfile, t1)
        slow_worker(tmp)
        hardening(tmp)
        tap(not SCHEMA_ERRORS, "every JSON body validated against the spec", "\n".join(SCHEMA_ERRORS))
    except Exception as e:  # a crash is a failure with its reason, not a silent exit
        import traceback
        tap(False, "test ran to the end", traceback.format_exc())
        for name in os.listdir(tmp):
            if name.endswith(".log"):
                print("# --- %s" % name)
                for line in open(os.path.join(tmp, name)).read().splitlines()[-20:]:
                    print("#   " + line)
    finally:
        if srv:
            srv.stop()
        print("# reports integration test took %.1f s" % (time.time() - t0))
        if FAILS == 0 and not os.environ.get("KEEPTMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("# kept " + tmp)
    print("1..%d" % TAPS)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
