#!/usr/bin/env python3
"""test_workloads_api.py: the workloads, metrics and telemetry APIs through the real daemon.

build/strata runs with --auth=jwt on loopback in a temp dir; data arrives only by remote write.
  1. golden: the hand-made cluster of tests/lib/fixture_workloads.py (values worked out by hand
     there and below) -> exact Workload fields, lists, endpoints, elements, metrics JSON and
     CSV, telemetry JSON and CSV;
  2. filter, sort and pagination combinations; validation 400s naming the parameter; auth;
  3. tenant isolation of every endpoint (tenant 2 has its own workload, tenant 3 nothing);
  4. a restart: the registry is rebuilt from the store, then --query-max-samples makes a
     metric type fail (207) and --max-points refuses numberOfSamples=0 (400);
  5. --auth=none: tenant 0 without a token;
  6. end to end: strata-load backfills a small cluster for tenant 4 with --ack-log; the
     expected metrics (13 types, histograms and percentiles included) of a Training, two
     Inference and a Pending workload are computed here from the acknowledged samples
     (strata-load --expand-ack) by the rules of docs/metrics.md and docs/downsampling.md, and compared.
Every JSON body is validated against the Run:ai spec page (tests/lib/spec_schema.py).
Prints TAP lines.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import jsonschema  # noqa: E402
from fixture_workloads import (A, C, CLUSTER, D, E, EL_A, EL_B, EL_ROOT, GIB, MIN, P1, P2,  # noqa: E402
                               X, Fixture)
from spec_schema import Spec  # noqa: E402
from strata_client import BUILD, SECRET, Server, iso, metric_value, rw1, token  # noqa: E402

SPEC = Spec.load("workloads")
FAILS = 0
TAPS = 0  # checks run: the trailing TAP plan "1..TAPS" (tests/run_tests.sh compares)
NIL = "00000000-0000-0000-0000-000000000000"


def tap(ok, name, info=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[:25]:
            print("#   " + line)
    sys.stdout.flush()


class Api:
    """GETs that validate every JSON body against the spec (path = the spec's template)."""

    def __init__(self, srv):
        self.srv = srv
        self.schema_errors = []

    @staticmethod
    def spec_has(spec_path, status):
        responses = SPEC.operation("get", spec_path)[1].get("responses", {})
        return str(status) in responses or "%dXX" % (status // 100) in responses or "default" in responses

    def get(self, path, tok, spec_path=None, accept=None):
        st, hdrs, data = self.srv.get(path, tok, accept)
        body = data.decode(errors="replace")
        if hdrs.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(data)
            except ValueError as e:
                self.schema_errors.append("%s: not JSON (%s)" % (path, e))
                return st, hdrs, body
            if spec_path and st >= 400 and not self.spec_has(spec_path, st):
                # the spec lists no body for this status here (e.g. 400 on GET /workloads):
                # hold it to the error shape every strata error has
                if not (isinstance(body, dict) and sorted(body) == ["code", "details", "message"]
                        and body["code"] == st and isinstance(body["message"], str)
                        and isinstance(body["details"], str)):
                    self.schema_errors.append("%s %d: not an error body: %s" % (path, st, body))
            elif spec_path:
                try:
                    SPEC.validate("get", spec_path, st, body)
                except (jsonschema.ValidationError, KeyError) as e:
                    self.schema_errors.append("%s %d: %s at %s" % (path, st, getattr(e, "message", e),
                                                                  list(getattr(e, "absolute_path", []))))
        return st, hdrs, body


W = "/api/v1/workloads"
W_ID = "/api/v1/workloads/{workloadId}"
P_LIST, P_COUNT, P_TEL = W, W + "/count", W + "/telemetry"
P_EP, P_EL, P_ELC, P_MET = W_ID + "/endpoints", W_ID + "/elements", W_ID + "/elements/count", W_ID + "/metrics"


def ids(body):
    return [w.get("id") for w in body.get("workloads", [])] if isinstance(body, dict) else body


def expected_workload(f, wid, **over):
    """The fields every fixture workload shares, then its own."""
    w = {"tenantId": 1, "id": wid, "source": "Other", "sourceApi": None, "priority": 50,
         "priorityClassName": "train", "submittedBy": "alice", "clusterId": CLUSTER,
         "conditions": [], "podsRequestedResources": None, "images": ["img:1"],
         "guaranteedRuntimeEndsAt": None, "preemptible": None, "topology": None, "datasources": [],
         "environments": [], "externalConnections": [], "urls": [], "endpoints": [],
         "deletedAt": None, "completedAt": None, "workloadRequestedResources": None,
         "requestedNodePools": [], "currentNodePools": [], "idleGpus": 0, "idleAllocatedGpus": 0,
         "runningPods": 0, "totalPendingTimeSeconds": 0, "totalRunningTimeSeconds": 0,
         "updatedAt": iso(f.t(f.K))}
    w.update(over)
    if "allocatedResources" not in over:
        w["allocatedResources"] = {"gpu": None, "gpuMemory": None, "cpu": None, "cpuMemory": None,
                                   "extendedResources": None}
    # the fixture sends no k8s_phase label: k8sPhase is not copied from phase
    w.setdefault("k8sPhase", "Unknown")
    w.setdefault("k8sPhaseUpdatedAt", w["createdAt"])
    return w


def alloc(gpu):
    return {"gpu": gpu, "gpuMemory": None, "cpu": None, "cpuMemory": None, "extendedResources": None}


def diff(got, want):
    if not isinstance(got, dict):
        return "got %r" % (got,)
    keys = sorted(set(got) | set(want))
    return "; ".join("%s: got %r want %r" % (k, got.get(k, "<absent>"), want.get(k, "<absent>"))
                     for k in keys if got.get(k, "<absent>") != want.get(k, "<absent>"))


def vals(pairs, f):
    """[(value text, minute)] -> metric values."""
    return [{"value": v, "timestamp": iso(f.t(k))} for v, k in pairs]


# ---------------------------------------------------------------------------------------------

def golden(api, f, r1):
    """Registry fields, lists, endpoints, elements, metrics and telemetry of tenant 1."""
    # D: Pending k0..9, Running k10..39, Completed from k40; no created_at label -> first info
    # sample (T0); updatedAt = its newest sample (minute K); allocation 0 since k40.
    st, _, body = api.get(W + "/" + D, r1, W_ID)
    want = expected_workload(f, D, name="pipe-d", type="Workspace", category="Build", projectName="proj-one",
                             projectId="p1", departmentName="dep-two", departmentId="d2",
                             namespace="runai-proj-one", createdAt=iso(f.t0), phase="Completed",
                             phaseUpdatedAt=iso(f.t(40)), completedAt=iso(f.t(40)), allocatedResources=alloc(0),
                             totalPendingTimeSeconds=600, totalRunningTimeSeconds=1800,
                             pendingSchedulingMessages=None)
    tap(st == 200 and body == want, "golden: Pending -> Running -> Completed workload, derived times exact",
        diff(body, want))

    # A: created_at label T0-10m; Running since k0 (so its running time grows with the clock);
    # 2 pods both Running at now; GPU 1 has been 0 since k0 -> idleGpus 1 of 2 reporting, so
    # idleAllocatedGpus = 2 x 1/2 = 1.
    before = int(time.time() * 1000)
    st, _, body = api.get(W + "/" + A, r1, W_ID)
    after = int(time.time() * 1000)
    run = body.get("totalRunningTimeSeconds", -1) if isinstance(body, dict) else -1
    want = expected_workload(f, A, name="train-a", type="Training", category="Train", projectName="proj-one",
                             projectId="p1", departmentName="dep-one", departmentId="d1",
                             namespace="runai-proj-one", createdAt=iso(f.t0 - 10 * MIN), phase="Running",
                             phaseUpdatedAt=iso(f.t0), allocatedResources=alloc(2), runningPods=2,
                             workloadRequestedResources={"gpu": None, "gpuMemory": {"request": "1000000000", "limit": None},
                                                         "cpu": None, "cpuMemory": None},
                             requestedNodePools=["pool-a"], currentNodePools=["pool-a"], idleGpus=1,
                             idleAllocatedGpus=1, totalRunningTimeSeconds=run, pendingSchedulingMessages=None)
    tap(st == 200 and body == want and (before - f.t0) // 1000 - 1 <= run <= (after - f.t0) // 1000 + 1,
        "golden: 2-GPU workload: pods, allocation, idle GPUs, memory request, running time",
        "%s; running %s not in [%d, %d]" % (diff(body, want), run, (before - f.t0) // 1000, (after - f.t0) // 1000))

    # E: info and phase ended by stale markers at k31 -> deletedAt T0+31m, running k0..k31.
    st, _, body = api.get(W + "?deleted=true", r1, P_LIST)
    want = expected_workload(f, E, name="del-e", type="Training", category="Train", projectName="proj-two",
                             projectId="p2", departmentName="dep-two", departmentId="d2",
                             namespace="runai-proj-two", createdAt=iso(f.t0), phase="Running",
                             phaseUpdatedAt=iso(f.t0), deletedAt=iso(f.t(31)), updatedAt=iso(f.t(30)),
                             totalRunningTimeSeconds=1860)
    got = body.get("workloads", [None])[0] if isinstance(body, dict) and len(body.get("workloads", [])) == 1 else body
    tap(st == 200 and got == want and "next" not in body, "golden: a stale marker deletes a workload (deleted=true)",
        diff(got, want))
    st, _, body = api.get(W + "/" + E, r1, W_ID)
    tap(st == 200 and body.get("deletedAt") == iso(f.t(31)), "a deleted workload is still found by id", body)

    # C: endpoint, 3 stored of 5 reported elements, ordered by level then name
    st, _, body = api.get(W + "/" + C + "/endpoints", r1, P_EP)
    ep = {"host": "nim-c.example", "port": 8000, "path": "/v1", "tlsEnabled": False, "protocol": "http",
          "url": "http://nim-c.example:8000/v1"}
    tap(st == 200 and body == {"endpoints": [ep]}, "golden: endpoints", body)
    st, _, body = api.get(W + "/" + C, r1, W_ID)
    tap(st == 200 and body.get("urls") == [ep["url"]] and body.get("endpoints") == [ep]
        and body.get("createdAt") == iso(f.t(5)) and body.get("runningPods") == 1
        and body.get("allocatedResources", {}).get("gpu") == 1 and body.get("idleGpus") == 0,
        "golden: inference workload (createdAt from its first info sample, urls)", body)

    def element(eid, name, level, parent, kind):
        return {"id": eid, "name": name, "hierarchyLevel": level, "parentId": parent, "createdAt": iso(f.t(5)),
                "kubernetesRef": {"uid": "uid-" + name, "name": name,
                                  "gvk": {"group": "apps", "version": "v1", "kind": kind}}}
    els = [element(EL_ROOT, "nim-c", 1, None, "Deployment"), element(EL_A, "nim-c-pod-a", 2, EL_ROOT, "Pod"),
           element(EL_B, "nim-c-pod-b", 2, EL_ROOT, "Pod")]
    st1, _, b1 = api.get(W + "/" + C + "/elements?limit=2", r1, P_EL)
    st2, _, b2 = api.get(W + "/" + C + "/elements?offset=2&limit=2", r1, P_EL)
    st3, _, b3 = api.get(W + "/" + C + "/elements", r1, P_EL)
    tap((st1, st2, st3) == (200, 200, 200) and b1 == {"elements": els[:2], "next": 2}
        and b2 == {"elements": els[2:]} and b3 == {"elements": els},
        "golden: elements, ordered by level then name, paged with next", "%s\n%s\n%s" % (b1, b2, b3))
    st, _, body = api.get(W + "/" + C + "/elements/count", r1, P_ELC)
    tap(st == 200 and body == {"totalElementsCount": 5, "storedElementsCount": 3}, "golden: elements/count", body)
    st, _, body = api.get(W + "/" + A + "/elements/count", r1, P_ELC)
    tap(st == 200 and body == {"totalElementsCount": 0, "storedElementsCount": 0}, "elements/count of none", body)

    metrics_golden(api, f, r1)
    telemetry_golden(api, f, r1)


def metrics_golden(api, f, r1):
    rng = "&start=%s&end=%s" % (iso(f.t0), iso(f.t(60)))
    q = lambda wid, types, n=4: "%s/%s/metrics?metricType=%s%s&numberOfSamples=%d" % (W, wid, types, rng, n)
    # 4 buckets of 15 min; bucket 1 = [T0, T0+15m], then (T0+15m, T0+30m] ...
    # GPU 0 at k:30 = k -> avg of k=0..14 = 7, 15..29 = 22, 30..44 = 37, 45..59 = 52.
    # CPU counter 30k (k<=30), reset at k31 to 10, then 10+60(k-31): increases 450, 450,
    #   10+840 = 850 (the reset counted as its new value), 900 -> / 900 s.
    # Requests: pod 0 2 cores; pod 1 (from k20) 1, 3 from k40: last per step summed = 2, 3, 5, 5.
    # Limits 4, and 4+6 once pod 1 exists.  Memory 1 GiB, then 1+2 GiB.  Pods present: 1, 2, 2, 2.
    # Running pods: pod 1 Running from k25 -> 1, 2, 2, 2.  container="POD" never counts.
    types = ("GPU_UTILIZATION,CPU_USAGE_CORES,CPU_REQUEST_CORES,CPU_LIMIT_CORES,CPU_MEMORY_REQUEST_BYTES,"
             "POD_COUNT,RUNNING_POD_COUNT,GPU_ALLOCATION,GPU_MEMORY_REQUEST_BYTES,NIM_NUM_REQUESTS_RUNNING")
    st, hdrs, body = api.get(q(A, types), r1, P_MET)
    ks = [15, 30, 45, 60]
    series = lambda *v: vals(list(zip(v, ks)), f)
    want = {"measurements": [
        {"type": "GPU_UTILIZATION", "labels": {"gpu": "0", "node": "node-1"}, "values": series("7", "22", "37", "52")},
        {"type": "GPU_UTILIZATION", "labels": {"gpu": "1", "node": "node-1"}, "values": series("0", "0", "0", "0")},
        {"type": "CPU_USAGE_CORES", "values": series("0.5", "0.5", repr(850 / 900), "1")},
        {"type": "CPU_REQUEST_CORES", "values": series("2", "3", "5", "5")},
        {"type": "CPU_LIMIT_CORES", "values": series("4", "10", "10", "10")},
        {"type": "CPU_MEMORY_REQUEST_BYTES", "values": series(str(GIB), str(3 * GIB), str(3 * GIB), str(3 * GIB))},
        {"type": "POD_COUNT", "values": series("1", "2", "2", "2")},
        {"type": "RUNNING_POD_COUNT", "values": series("1", "2", "2", "2")},
        {"type": "GPU_ALLOCATION", "values": series("2", "2", "2", "2")},
        {"type": "GPU_MEMORY_REQUEST_BYTES", "values": series(*["1000000000"] * 4)},
        {"type": "NIM_NUM_REQUESTS_RUNNING", "values": []}]}
    bad = [(w.get("type"), w.get("labels")) for w, g in zip(want["measurements"], body.get("measurements", []))
           if w != g] if isinstance(body, dict) else body
    tap(st == 200 and body == want, "golden metrics JSON: per-GPU avg, counter with a reset, requests/limits "
        "over 2 pods changing mid-range, pod counts, allocation", "differ: %s\n%s" % (bad, body))
    tap(hdrs.get("x-strata-points-read", "").isdigit() and int(hdrs["x-strata-points-read"]) > 0,
        "X-Strata-Points-Read header", hdrs)

    csv_want = "\r\n".join([
        "type,timestamp,value,gpu,node",
        "GPU_UTILIZATION,%s,7,0,node-1" % iso(f.t(15)), "GPU_UTILIZATION,%s,22,0,node-1" % iso(f.t(30)),
        "GPU_UTILIZATION,%s,37,0,node-1" % iso(f.t(45)), "GPU_UTILIZATION,%s,52,0,node-1" % iso(f.t(60)),
        "GPU_UTILIZATION,%s,0,1,node-1" % iso(f.t(15)), "GPU_UTILIZATION,%s,0,1,node-1" % iso(f.t(30)),
        "GPU_UTILIZATION,%s,0,1,node-1" % iso(f.t(45)), "GPU_UTILIZATION,%s,0,1,node-1" % iso(f.t(60)),
        "CPU_USAGE_CORES,%s,0.5,," % iso(f.t(15)), "CPU_USAGE_CORES,%s,0.5,," % iso(f.t(30)),
        "CPU_USAGE_CORES,%s,%r,," % (iso(f.t(45)), 850 / 900), "CPU_USAGE_CORES,%s,1,," % iso(f.t(60)), ""])
    st, hdrs, text = api.get(q(A, "GPU_UTILIZATION,CPU_USAGE_CORES"), r1, accept="text/csv")
    tap(st == 200 and hdrs.get("content-type", "") == "text/csv; charset=utf-8" and text == csv_want,
        "golden metrics CSV, exact text", "%r\nwant %r" % (text, csv_want))

    # C: TTFT buckets grow by 10, 40, 80, 95, 100 a minute -> every 15-min step: 150, 600, 1200,
    # 1425, 1500.  p50: rank 750 in (0.5, 1] = 0.5 + 0.5 x 150/600 = 0.625; p90: rank 1350 in
    # (1, 2] = 1 + 150/225; p99: rank 1485 > 1425 -> the +Inf bucket -> the last finite bound, 2.
    # request_success_total +7 a minute -> 105 a step.
    st, _, body = api.get(q(C, "NIM_TIME_TO_FIRST_TOKEN_SECONDS,NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,"
                               "NIM_REQUEST_SUCCESS_TOTAL"), r1, P_MET)
    buckets = {"0.1": "150", "0.5": "600", "1": "1200", "2": "1425", "+Inf": "1500"}
    pct = {"p50": "0.625", "p90": repr(1 + 1 * (150 / 225)), "p99": "2"}
    want = {"measurements": [{"type": "NIM_REQUEST_SUCCESS_TOTAL", "values": series("105", "105", "105", "105")}],
            "histogram": [
                {"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
                 "values": [{"timestamp": iso(f.t(k)), "data": buckets} for k in ks]},
                {"type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES",
                 "values": [{"timestamp": iso(f.t(k)), "data": pct} for k in ks]}]}
    tap(st == 200 and body == want, "golden NIM histogram buckets and p50/p90/p99", body)
    st, _, text = api.get(q(C, "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,NIM_REQUEST_SUCCESS_TOTAL", 1),
                          r1, accept="text/csv")
    csv_want = ("type,timestamp,key,value\r\nNIM_REQUEST_SUCCESS_TOTAL,{e},,420\r\n"
                "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,{e},p50,0.625\r\n"
                "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,{e},p90,{p90}\r\n"
                "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,{e},p99,2\r\n").format(e=iso(f.t(60)), p90=pct["p90"])
    tap(st == 200 and text == csv_want, "golden percentiles CSV (one step), exact text", "%r\nwant %r" % (text, csv_want))

    # Native resolution over 10 minutes: every stored sample once, at its own timestamp (k:30).
    st, _, body = api.get("%s/%s/metrics?metricType=GPU_UTILIZATION&start=%s&end=%s&numberOfSamples=0"
                          % (W, A, iso(f.t(0)), iso(f.t(10))), r1, P_MET)
    m0 = body.get("measurements", [{}])[0] if isinstance(body, dict) else {}
    got = [(v["value"], v["timestamp"]) for v in m0.get("values", [])]
    tap(st == 200 and m0.get("labels") == {"gpu": "0", "node": "node-1"}
        and got == [(str(k), iso(f.t(k) + 30000)) for k in range(10)],
        "numberOfSamples=0 returns each stored sample at its own timestamp", got)
    st2, _, body2 = api.get("%s/%s/metrics?metricType=GPU_UTILIZATION&start=%s&end=%s&numberOfSamples=0"
                            "&unknownParameter=1&limit=x" % (W, A, iso(f.t(0)), iso(f.t(10))), r1, P_MET)
    tap(st2 == 200 and body2 == body, "metrics: unknown query parameters are ignored", body2)
    # A deleted workload's metrics are still served; an unknown id is 404.
    st, _, body = api.get("%s/%s/metrics?metricType=GPU_ALLOCATION%s" % (W, E, rng), r1, P_MET)
    tap(st == 200 and body == {"measurements": [{"type": "GPU_ALLOCATION", "values": []}]},
        "metrics of a deleted workload without data: values []", body)


def telemetry_golden(api, f, r1):
    """Live workloads of tenant 1: A (2 GPUs, 1 idle of 2 -> 1 idle allocated), C (1), D (0,
    Completed), P1 (Pending since T0: 1h-6h), P2 (Pending since K-20: 0-1h); E is deleted."""
    def tel(qs, accept=None):
        return api.get(W + "/telemetry?" + qs, r1, None if accept else P_TEL, accept)

    def values(body):
        return [(v["value"], [(g["key"], g["value"], g.get("name")) for g in v["groups"]])
                for v in body.get("values", [])] if isinstance(body, dict) else body
    cases = [
        ("telemetryType=WORKLOADS_COUNT", [("5", [])]),
        ("telemetryType=GPU_ALLOCATION", [("3", [])]),
        ("telemetryType=IDLE_ALLOCATED_GPUS", [("1", [])]),
        ("telemetryType=PENDING_TIME_DISTRIBUTION", [("1", [("PendingTime", "0-1h", None)]),
                                                     ("1", [("PendingTime", "1h-6h", None)]),
                                                     ("0", [("PendingTime", "6h-24h", None)]),
                                                     ("0", [("PendingTime", "24h+", None)])]),
        ("telemetryType=WORKLOADS_COUNT&groupBy=Phase", [("1", [("Phase", "Completed", None)]),
                                                         ("2", [("Phase", "Pending", None)]),
                                                         ("2", [("Phase", "Running", None)])]),
        ("telemetryType=GPU_ALLOCATION&groupBy=DepartmentId", [("3", [("DepartmentId", "d1", "dep-one")]),
                                                               ("0", [("DepartmentId", "d2", "dep-two")])]),
        ("telemetryType=WORKLOADS_COUNT&groupBy=ProjectId,Category",
         [("1", [("ProjectId", "p1", "proj-one"), ("Category", "Build", None)]),
          ("2", [("ProjectId", "p1", "proj-one"), ("Category", "Train", None)]),
          ("1", [("ProjectId", "p2", "proj-two"), ("Category", "Deploy", None)]),
          ("1", [("ProjectId", "p2", "proj-two"), ("Category", "Train", None)])]),
        ("telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=DepartmentId",
         [("0", [("PendingTime", "0-1h", None), ("DepartmentId", "d1", "dep-one")]),
          ("1", [("PendingTime", "0-1h", None), ("DepartmentId", "d2", "dep-two")]),
          ("1", [("PendingTime", "1h-6h", None), ("DepartmentId", "d1", "dep-one")]),
          ("0", [("PendingTime", "1h-6h", None), ("DepartmentId", "d2", "dep-two")]),
          ("0", [("PendingTime", "6h-24h", None), ("DepartmentId", "d1", "dep-one")]),
          ("0", [("PendingTime", "6h-24h", None), ("DepartmentId", "d2", "dep-two")]),
          ("0", [("PendingTime", "24h+", None), ("DepartmentId", "d1", "dep-one")]),
          ("0", [("PendingTime", "24h+", None), ("DepartmentId", "d2", "dep-two")])]),
        # only groups with a Pending workload appear (Running-only d1 types do not), each with 4 buckets
        ("telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Category",
         [("1", [("PendingTime", "0-1h", None), ("Category", "Train", None)]),
          ("1", [("PendingTime", "1h-6h", None), ("Category", "Train", None)]),
          ("0", [("PendingTime", "6h-24h", None), ("Category", "Train", None)]),
          ("0", [("PendingTime", "24h+", None), ("Category", "Train", None)])]),
        ("telemetryType=WORKLOADS_COUNT&groupBy=CurrentNodepools",
         [("3", [("CurrentNodepools", "", None)]), ("1", [("CurrentNodepools", "pool-a", None)]),
          ("1", [("CurrentNodepools", "pool-b", None)])]),
        ("telemetryType=GPU_ALLOCATION&nodepoolName=pool-a", [("2", [])]),
        ("telemetryType=WORKLOADS_COUNT&filterByPhases=Running,Completed&clusterId=" + CLUSTER, [("3", [])]),
        ("telemetryType=WORKLOADS_COUNT&departmentId=d2&groupBy=Type",
         [("1", [("Type", "Training", None)]), ("1", [("Type", "Workspace", None)])]),
        ("telemetryType=WORKLOADS_COUNT&clusterId=" + CLUSTER.upper(), [("5", [])]),
        ("telemetryType=WORKLOADS_COUNT&unknownParameter=x&limit=nonsense", [("5", [])]),
    ]
    for qs, want in cases:
        st, _, body = tel(qs)
        tap(st == 200 and values(body) == want and body.get("type") == qs.split("=")[1].split("&")[0],
            "telemetry " + qs, "%s %s" % (st, body))
    st, hdrs, text = tel("telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId,Phase", "text/csv")
    want = ("DepartmentId,DepartmentName,Phase,value\nd1,dep-one,Pending,1\nd1,dep-one,Running,2\n"
            "d2,dep-two,Completed,1\nd2,dep-two,Pending,1\n")
    tap(st == 200 and hdrs.get("content-type", "") == "text/csv; charset=utf-8" and text == want,
        "telemetry CSV by DepartmentId,Phase, exact text, text/csv; charset=utf-8", "%r %r" % (hdrs, text))
    st, _, text = tel("telemetryType=IDLE_ALLOCATED_GPUS", "text/csv")
    tap(st == 200 and text == "value\n1\n", "telemetry CSV without groups", "%r" % text)
    st, hdrs, text = tel("telemetryType=PENDING_TIME_DISTRIBUTION", "text/csv")
    tap(st == 200 and text == "PendingTime,value\n0-1h,1\n1h-6h,1\n6h-24h,0\n24h+,0\n",
        "telemetry CSV PENDING_TIME_DISTRIBUTION: all 4 buckets", "%r" % text)
    # a cluster no workload of the tenant ever carried: 404 (the spec's error body), JSON and CSV
    for accept in (None, "text/csv"):
        st, hdrs, body = api.get(W + "/telemetry?telemetryType=WORKLOADS_COUNT&clusterId=" + NIL, r1, P_TEL, accept)
        tap(st == 404 and isinstance(body, dict) and body.get("code") == 404 and NIL in body.get("details", ""),
            "telemetry clusterId never seen -> 404 (Accept %s)" % accept, "%s %s" % (st, body))


# ---------------------------------------------------------------------------------------------

def lists(api, f, r1):
    """Filter, sort and pagination over tenant 1's live workloads A, C, D, P1, P2."""
    name = {A: "train-a", C: "nim-c", D: "pipe-d", P1: "pend-1", P2: "pend-2"}
    by_name = sorted(name, key=name.get)               # C, P1, P2, D, A
    cases = [
        ("", [A, D, P1, C, P2], None),                 # createdAt asc (A's label is T0-10m), ties by id
        ("sortOrder=desc", [P2, C, D, P1, A], None),   # ties still by id ascending
        ("sortBy=name", by_name, None),
        ("sortBy=name&sortOrder=desc", by_name[::-1], None),
        ("sortBy=name&limit=2", by_name[:2], 2),
        ("sortBy=name&offset=2&limit=2", by_name[2:4], 4),
        ("sortBy=name&offset=4&limit=2", by_name[4:], None),
        ("sortBy=name&offset=10", [], None),
        ("filterBy=phase==Pending", [P1, P2], None),
        ("filterBy=phase!=Pending&sortBy=name", [C, D, A], None),
        ("filterBy=type==Training,phase==Running", [A], None),
        ("filterBy=type==Training&filterBy=phase==Pending&sortBy=name&sortOrder=desc", [P2, P1], None),
        ("filterBy=projectName=@one&sortBy=name", [P1, D, A], None),
        ("filterBy=name=^pend", [P1, P2], None),
        ("filterBy=name=$-d", [D], None),
        ("filterBy=allocatedGPU>=1", [A, C], None),
        ("filterBy=createdAt>=%s" % iso(f.t(1)), [C, P2], None),
        ("filterBy=totalPendingTimeSeconds>=600&sortBy=totalPendingTimeSeconds&sortOrder=desc", [P1, P2, D], None),
        ("filterBy=departmentId==d1&sortBy=name&sortOrder=desc&limit=2", [A, P1], 2),
        ("filterBy=nodepool==pool-b", [C], None),
        ("search=PROJ-TWO", [C, P2], None),
        ("search=dep-two&sortBy=name", [P2, D], None),
        ("search=nothing-like-this", [], None),
        ("sortBy=allocatedGPU&sortOrder=desc", [A, C, D, P1, P2], None),  # P2 has no allocation: null last
        ("unknownParameter=1&sortBy=name", by_name, None),
        # absent optional strings are null: comparisons never match, != and !@ do
        ("filterBy=distributedFramework<=PyTorch", [], None),
        ("filterBy=distributedFramework>=A", [], None),
        ("filterBy=distributedFramework!=PyTorch&sortBy=name", by_name, None),
        ("filterBy=aiApplicationName!@x&sortBy=name", by_name, None),
        ("filterBy=submittedBy<=alice&sortBy=name", by_name, None),
    ]
    for qs, want, nxt in cases:
        st, _, body = api.get(W + "?" + qs, r1, P_LIST)
        ok = st == 200 and ids(body) == want and body.get("next") == nxt
        st2, _, cbody = api.get(W + "/count?" + qs, r1, P_COUNT)
        tap(ok, "list " + (qs or "(defaults)"), "%s got %s want %s next %s" % (
            st, [name.get(i, i) for i in ids(body)] if isinstance(body, dict) else body,
            [name[i] for i in want], body.get("next") if isinstance(body, dict) else None))
        if "offset" not in qs and "limit" not in qs:
            tap(st2 == 200 and cbody == {"count": len(want)}, "count " + (qs or "(defaults)"), cbody)
    st, _, body = api.get(W + "/count?deleted=true", r1, P_COUNT)
    tap(st == 200 and body == {"count": 1}, "count deleted=true", body)


def validation(api, f, r1, w1):
    def bad(path, param, spec_path):
        st, _, body = api.get(path, r1, spec_path)
        tap(st == 400 and isinstance(body, dict) and body.get("code") == 400 and param in body.get("message", ""),
            "400 naming %s: %s" % (param, path.split("?", 1)[-1]), "%s %s" % (st, body))
    for qs, param in [("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("offset=-1", "offset"),
                      ("offset=1.5", "offset"), ("deleted=maybe", "deleted"), ("sortOrder=up", "sortOrder"),
                      ("sortBy=bogus", "sortBy"), ("filterBy=bogus==1", "bogus"), ("filterBy=name", "name"),
                      ("filterBy=allocatedGPU>=many", "allocatedGPU"), ("filterBy=createdAt>=yesterday", "createdAt")]:
        bad(W + "?" + qs, param, P_LIST)
    bad(W + "/count?filterBy=bogus==1", "bogus", P_COUNT)
    bad(W + "/" + C + "/elements?limit=0", "limit", P_EL)
    bad(W + "/" + C + "/elements?offset=-2", "offset", P_EL)
    rng = "&start=%s&end=%s" % (iso(f.t0), iso(f.t(60)))
    m = W + "/" + A + "/metrics?"
    for qs, param in [("start=%s&end=%s" % (iso(f.t0), iso(f.t(60))), "metricType"),
                      ("metricType=BOGUS" + rng, "metricType"),
                      ("metricType=gpu_utilization" + rng, "metricType"),
                      ("metricType=" + ",".join(["GPU_ALLOCATION"] * 11) + rng, "metricType"),
                      ("metricType=GPU_ALLOCATION&end=" + iso(f.t(60)), "start"),
                      ("metricType=GPU_ALLOCATION&start=yesterday&end=" + iso(f.t(60)), "start"),
                      ("metricType=GPU_ALLOCATION&start=" + iso(f.t0), "end"),
                      ("metricType=GPU_ALLOCATION&start=%s&end=%s" % (iso(f.t(60)), iso(f.t0)), "end"),
                      ("metricType=GPU_ALLOCATION&numberOfSamples=1001" + rng, "numberOfSamples"),
                      ("metricType=GPU_ALLOCATION&numberOfSamples=-1" + rng, "numberOfSamples"),
                      ("metricType=GPU_ALLOCATION&numberOfSamples=x" + rng, "numberOfSamples"),
                      ("metricType=GPU_ALLOCATION&start=%s&end=%s" % (iso(f.t0 - 32 * 86400000), iso(f.t0)), "range")]:
        bad(m + qs, param, P_MET)
    for qs, param in [("", "telemetryType"), ("telemetryType=BOGUS", "telemetryType"),
                      ("telemetryType=WORKLOADS_COUNT&groupBy=Bogus", "groupBy"),
                      ("telemetryType=WORKLOADS_COUNT&groupBy=Phase,Type,Category", "groupBy"),
                      ("telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Phase,Type", "groupBy"),
                      ("telemetryType=WORKLOADS_COUNT&clusterId=not-a-uuid", "clusterId"),
                      ("telemetryType=WORKLOADS_COUNT&filterByPhases=Sleeping", "filterByPhases")]:
        bad(W + "/telemetry?" + qs, param, P_TEL)
    # auth: no token 401, a token without metrics:read 403, on every endpoint
    paths = [W, W + "/count", W + "/" + A, W + "/" + C + "/endpoints", W + "/" + C + "/elements",
             W + "/" + C + "/elements/count", W + "/" + A + "/metrics?metricType=GPU_ALLOCATION" + rng,
             W + "/telemetry?telemetryType=WORKLOADS_COUNT"]
    got = [(api.srv.get(p)[0], api.srv.get(p, w1)[0]) for p in paths]
    tap(got == [(401, 403)] * len(paths), "every endpoint: 401 without a token, 403 without metrics:read", got)


def isolation(api, f, r1, r2, r3):
    """Tenant 2 sees only X; tenant 3 nothing; tenant 1's ids are 404 to them, and X to tenant 1."""
    rng = "&start=%s&end=%s" % (iso(f.t0), iso(f.t(60)))
    for tok, tenant, mine in ((r2, 2, [X]), (r3, 3, [])):
        st, _, body = api.get(W, tok, P_LIST)
        st2, _, cnt = api.get(W + "/count", tok, P_COUNT)
        st3, _, dl = api.get(W + "?deleted=true", tok, P_LIST)
        tap(st == 200 and ids(body) == mine and cnt == {"count": len(mine)} and ids(dl) == [],
            "tenant %d: list and count hold only its own workloads" % tenant, "%s %s %s" % (body, cnt, dl))
        for wid in (A, C, E):
            codes = []
            for sub, sp in (("", W_ID), ("/endpoints", P_EP), ("/elements", P_EL), ("/elements/count", P_ELC),
                            ("/metrics?metricType=GPU_ALLOCATION" + rng, P_MET)):
                st, _, body = api.get(W + "/" + wid + sub, tok, sp)
                codes.append(st if isinstance(body, dict) and body.get("code") == st else (st, body))
            tap(codes == [404] * 5, "tenant %d: tenant 1's workload %s is 404 on every per-id endpoint" % (tenant, wid[:8]),
                codes)
        want = {"WORKLOADS_COUNT": str(len(mine)), "GPU_ALLOCATION": "4" if mine else "0",
                "IDLE_ALLOCATED_GPUS": "0"}
        got = {}
        for t in want:
            st, _, body = api.get(W + "/telemetry?telemetryType=" + t, tok, P_TEL)
            got[t] = body["values"][0]["value"] if st == 200 and len(body.get("values", [])) == 1 else (st, body)
        st, _, body = api.get(W + "/telemetry?telemetryType=PENDING_TIME_DISTRIBUTION", tok, P_TEL)
        zeros = [{"value": "0", "groups": [{"key": "PendingTime", "value": b}]}
                 for b in ("0-1h", "1h-6h", "6h-24h", "24h+")]
        tap(got == want and st == 200 and body.get("values") == zeros,
            "tenant %d: telemetry counts only its own workloads" % tenant, "%s %s" % (got, body))
    codes = [api.get(W + "/" + X + sub, r1, sp)[0] for sub, sp in
             (("", W_ID), ("/endpoints", P_EP), ("/elements", P_EL), ("/elements/count", P_ELC),
              ("/metrics?metricType=GPU_ALLOCATION" + rng, P_MET))]
    tap(codes == [404] * 5, "tenant 1: tenant 2's workload is 404 on every per-id endpoint", codes)
    st, _, body = api.get(W + "/" + NIL, r1, W_ID)
    tap(st == 404 and body.get("code") == 404, "unknown workload id -> 404 JSON", body)
    # seen clusters are per tenant: tenant 3 has none
    st, _, body = api.get(W + "/telemetry?telemetryType=WORKLOADS_COUNT&clusterId=" + CLUSTER, r3, P_TEL)
    tap(st == 404 and body.get("code") == 404, "tenant 3: tenant 1's cluster is 404 to telemetry", body)


def uuid_case(api, f, r1):
    """Uuids compare case-insensitively (RFC 4122): every per-id endpoint finds an upper-case id
    and answers what the lower-case one does (the stored id echoed)."""
    rng = "&start=%s&end=%s" % (iso(f.t0), iso(f.t(60)))
    for sub, sp in (("", W_ID), ("/endpoints", P_EP), ("/elements", P_EL), ("/elements/count", P_ELC),
                    ("/metrics?metricType=GPU_ALLOCATION,CPU_USAGE_CORES" + rng, P_MET)):
        # fields counted to now (running time) may tick between two requests: the
        # upper-case answer must equal the lower-case one just before or just after it
        lo = api.get(W + "/" + A + sub, r1, sp)
        up = api.get(W + "/" + A.upper() + sub, r1, sp)
        lo2 = api.get(W + "/" + A + sub, r1, sp)
        tap(up[0] == 200 and lo[0] == 200 and up[2] in (lo[2], lo2[2]),
            "upper-case workload id: %s answers as the lower-case one" % (sub.split("?")[0] or "GET"),
            "%s %s / %s" % (up[0], str(up[2])[:300], str(lo[2])[:300]))
    st, _, body = api.get(W + "/" + A.upper(), r1, W_ID)
    tap(st == 200 and body.get("id") == A, "upper-case workload id: the stored id is echoed", body)


def metrics_counter(srv, api, f, r1):
    """X-Strata-Points-Read and the /metrics counter agree: GPU_ALLOCATION of A over 1 h at 4
    steps of 15 min reads the 5-min rollups: 12 points."""
    def counter():
        v = metric_value(srv.get("/metrics", r1)[2], "strata_metrics_points_read_total")
        return None if v is None else int(v)
    c0 = counter()
    st, hdrs, _ = api.get("%s/%s/metrics?metricType=GPU_ALLOCATION&start=%s&end=%s&numberOfSamples=4"
                          % (W, A, iso(f.t0), iso(f.t(60))), r1, P_MET)
    c1 = counter()
    tap(st == 200 and hdrs.get("x-strata-points-read") == "12" and c0 is not None and c1 - c0 == 12,
        "points read: header 12 (5-min rollups of one series over 1 h) and /metrics counter +12",
        "%s %s %s %s" % (st, hdrs.get("x-strata-points-read"), c0, c1))


def after_restart(srv, api, f, r1):
    """Restarted with --query-max-samples=60 --max-points=50: the registry comes back from the
    store.  Native resolution over [T0, T0+31m]: GPU_UTILIZATION reads 2 series x 31 raw samples
    = 62 > 60 -> that type fails; GPU_ALLOCATION reads 32 and answers them all, each at its own
    timestamp T0..T0+31m: 207.  Over [T0, T0+55m] GPU_ALLOCATION reads 56 <= 60 but has
    56 points > --max-points -> 400."""
    st, _, body = api.get(W + "/" + D, r1, W_ID)
    tap(st == 200 and body.get("phase") == "Completed" and body.get("totalRunningTimeSeconds") == 1800
        and body.get("phaseUpdatedAt") == iso(f.t(40)), "registry rebuilt from the store at start", body)
    st, _, body = api.get(W + "?deleted=true", r1, P_LIST)
    tap(st == 200 and ids(body) == [E] and body["workloads"][0].get("deletedAt") == iso(f.t(31)),
        "deleted workload and its deletedAt survive a restart", body)
    st, _, body = api.get(W + "/telemetry?telemetryType=WORKLOADS_COUNT", r1, P_TEL)
    tap(st == 200 and body.get("values", [{}])[0].get("value") == "5", "telemetry after restart", body)
    rng = "&start=%s&end=%s" % (iso(f.t0), iso(f.t(31)))
    st, _, body = api.get("%s/%s/metrics?metricType=GPU_UTILIZATION,GPU_ALLOCATION&numberOfSamples=0%s"
                          % (W, A, rng), r1, P_MET)
    ms = body.get("measurements", []) if isinstance(body, dict) else []
    tap(st == 207 and len(ms) == 2 and ms[0].get("type") == "GPU_UTILIZATION" and ms[0].get("values") is None
        and "sample limit" in ms[0].get("labels", {}).get("error", "")
        and ms[1].get("type") == "GPU_ALLOCATION"
        and ms[1].get("values") == [{"value": "2", "timestamp": iso(f.t(k))} for k in range(0, 32)],
        "207: one metric type over --query-max-samples, the other answered", body)
    st, _, text = api.get("%s/%s/metrics?metricType=GPU_UTILIZATION,GPU_ALLOCATION&numberOfSamples=0%s"
                          % (W, A, rng), r1, accept="text/csv")
    lines = text.split("\r\n")
    tap(st == 207 and lines[0] == "type,timestamp,value,error" and lines[1].startswith("GPU_UTILIZATION,,,sample limit")
        and lines[2] == "GPU_ALLOCATION,%s,2," % iso(f.t(0)) and len(lines) == 35 and lines[-1] == "", "207 as CSV: the failed type's error in its row",
        "%s %r" % (st, text[:300]))
    st, _, body = api.get("%s/%s/metrics?metricType=GPU_ALLOCATION&numberOfSamples=0&start=%s&end=%s"
                          % (W, A, iso(f.t0), iso(f.t(55))), r1, P_MET)
    tap(st == 400 and "more than 50 points" in body.get("message", ""),
        "numberOfSamples=0 over --max-points -> 400", body)


# ---------------------------------------------------------------------------------------------
# end to end with strata-load: expected values from the acknowledged samples

def bucket_edges(start, end, n):
    return [start + (i * (end - start)) // n for i in range(n + 1)]


def bucket_of(edges, t):
    if t == edges[0]:
        return 1
    for i in range(1, len(edges)):
        if edges[i - 1] < t <= edges[i]:
            return i
    return 0


def step_avg(samples, edges):
    out = {}
    for t, v in samples:
        b = bucket_of(edges, t)
        if b:
            out.setdefault(b, []).append(v)
    return {b: sum(v) / len(v) for b, v in out.items()}


def step_last(samples, edges):
    out = {}
    for t, v in sorted(samples):
        b = bucket_of(edges, t)
        if b:
            out[b] = v
    return out


def step_increase(samples, edges, lookback):
    """Reset-aware, no extrapolation: from the last sample before the bucket (for bucket 1,
    before start and at most lookback before it), else from the bucket's first sample."""
    samples = sorted(samples)
    out = {}
    for b in range(1, len(edges)):
        lo, hi = edges[b - 1], edges[b]
        if b == 1:
            inside = [v for t, v in samples if lo <= t <= hi]
            before = [v for t, v in samples if lo - lookback <= t < lo]
        else:
            inside = [v for t, v in samples if lo < t <= hi]
            before = [v for t, v in samples if edges[0] - lookback <= t <= lo]
        if not inside:
            continue
        seq = before[-1:] + inside
        out[b] = sum(q - p if q >= p else q for p, q in zip(seq, seq[1:]))
    return out


def fmt(v):
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


RR = "runai_workload_requested_resource"


def e2e_fields(api, srv, series, r4, w4):
    """Resource and status fields, elements and the bad-level counter of every simulated workload,
    expected from the acknowledged samples (docs/registry.md, "Derived fields")."""
    by = {}
    for s in series:
        by.setdefault(s["metric"]["__name__"], []).append(s)
    pod_wl = {(s["metric"]["namespace"], s["metric"]["pod"]): s["metric"]["workload_id"] for s in by["runai_pod_info"]}
    running = {(s["metric"]["namespace"], s["metric"]["pod"]) for s in by["kube_pod_status_phase"]
               if s["metric"]["phase"] == "Running" and s["values"][-1] == 1}
    ident = lambda v: v  # noqa: E731

    def rl(req, lim, f):
        return None if req is None and lim is None else \
            {"request": None if req is None else f(req), "limit": None if lim is None else f(lim)}

    checked = 0
    for s_info in sorted(by["runai_workload_info"], key=lambda s: s["metric"]["workload_name"]):
        m = s_info["metric"]
        wid = m["workload_id"]

        def last(name, **lab):
            v = [s["values"][-1] for s in by.get(name, []) if s["metric"].get("workload_id") == wid
                 and all(s["metric"].get(k) == x for k, x in lab.items())]
            return v[0] if v else None
        psum, asum = {}, {}
        for name, kind in (("kube_pod_container_resource_requests", "request"),
                           ("kube_pod_container_resource_limits", "limit")):
            for s in by.get(name, []):
                key = (s["metric"]["namespace"], s["metric"]["pod"])
                if pod_wl.get(key) != wid:
                    continue
                res = {"cpu": "cpu", "memory": "cpuMemory", "nvidia_com_gpu": "gpu"}[s["metric"]["resource"]]
                psum.setdefault(res, {})[kind] = psum.get(res, {}).get(kind, 0) + s["values"][-1]
                if kind == "request" and key in running:
                    asum[res] = asum.get(res, 0) + s["values"][-1]
        # GPU memory allocated to the workload's running pods
        gmem = [s["values"][-1] for s in by.get("runai_pod_gpu_memory_allocated_bytes", [])
                if (s["metric"]["namespace"], s["metric"]["pod"]) in running
                and pod_wl.get((s["metric"]["namespace"], s["metric"]["pod"])) == wid]
        phase = [s["metric"] for s in by["runai_workload_phase"]
                 if s["metric"]["workload_id"] == wid and s["values"][-1] == 1][0]
        conds = sorted(({k: v for k, v in (("type", c["metric"]["type"]), ("status", c["metric"]["status"]),
                                           ("reason", c["metric"].get("reason")),
                                           ("message", c["metric"].get("message")),
                                           ("lastTransitionTime", iso(min(c["timestamps"])))) if v is not None}
                        for c in by["runai_workload_condition"] if c["metric"]["workload_id"] == wid),
                       key=lambda c: c["type"])
        psms = sorted(({"nodePool": p["metric"]["nodepool"], "phaseReason": p["metric"]["phase_reason"],
                        "reason": p["metric"]["reason"], "orgType": p["metric"]["org_type"],
                        "userMessage": p["metric"]["user_message"]}
                       for p in by.get("runai_workload_pending_scheduling_message", [])
                       if p["metric"]["workload_id"] == wid), key=lambda p: p["nodePool"])
        want = {
            "workloadRequestedResources": {
                "gpuRequestType": m["gpu_request_type"],
                "gpu": rl(last(RR, resource="gpu", kind="request"), last(RR, resource="gpu", kind="limit"), ident),
                "gpuMemory": rl(last("runai_workload_gpu_memory_request_bytes"), None, fmt),
                "cpu": rl(last(RR, resource="cpu", kind="request"), last(RR, resource="cpu", kind="limit"), ident),
                "cpuMemory": rl(last(RR, resource="cpu_memory", kind="request"),
                                last(RR, resource="cpu_memory", kind="limit"), fmt)},
            "podsRequestedResources": {
                "gpu": rl(psum.get("gpu", {}).get("request"), psum.get("gpu", {}).get("limit"), ident),
                "gpuMemory": None,
                "cpu": rl(psum.get("cpu", {}).get("request"), psum.get("cpu", {}).get("limit"), ident),
                "cpuMemory": rl(psum.get("cpuMemory", {}).get("request"), psum.get("cpuMemory", {}).get("limit"),
                                fmt)},
            "allocatedResources": {"gpu": last("runai_workload_gpu_allocation"),
                                   "gpuMemory": fmt(sum(gmem)) if gmem else None,
                                   "cpu": asum.get("cpu"),
                                   "cpuMemory": fmt(asum["cpuMemory"]) if "cpuMemory" in asum else None,
                                   "extendedResources": None},
            "requestedPods": {k: int(m[lab]) if lab in m else None
                              for k, lab in (("number", "requested_pods"), ("min", "requested_pods_min"),
                                             ("max", "requested_pods_max"), ("parallelism", "parallelism"),
                                             ("completions", "completions"))},
            "actionsSupport": {"delete": m["actions_delete"] == "true", "suspend": m["actions_suspend"] == "true"},
            "phase": phase["phase"],
            "phaseMessage": phase.get("phase_message", "<absent>"),
            "phaseReason": phase.get("phase_reason", "<absent>"),
            "k8sPhase": m["k8s_phase"],
            "k8sPhaseUpdatedAt": iso(min(s_info["timestamps"])),
            "conditions": conds,
            "pendingSchedulingMessages": psms or None,
        }
        st, _, body = api.get(W + "/" + wid, r4, W_ID)
        got = {k: body.get(k, "<absent>") for k in want} if isinstance(body, dict) else body
        if isinstance(got, dict) and got.get("pendingSchedulingMessages"):
            got["pendingSchedulingMessages"] = sorted(got["pendingSchedulingMessages"], key=lambda p: p["nodePool"])
        tap(st == 200 and got == want, "end to end: resource and status fields of %s (%s, %s)"
            % (m["workload_name"], m["workload_type"], phase["phase"]), diff(got, want))
        # elements: the root at level 1 without a parent, each pod at level 2 under it
        st, _, body = api.get(W + "/" + wid + "/elements", r4, P_EL)
        els = body.get("elements", []) if isinstance(body, dict) else []
        root = els[0] if els else {}
        tap(st == 200 and len(els) == int(m["requested_pods"]) + 1 and root.get("hierarchyLevel") == 1
            and root.get("parentId") is None and root.get("kubernetesRef", {}).get("gvk", {}).get("kind") != "Pod"
            and all(e.get("hierarchyLevel") == 2 and e.get("parentId") == root.get("id") for e in els[1:]),
            "end to end: elements of %s: root at level 1, pods at level 2 under it" % m["workload_name"], els)
        checked += 1
    tap(checked == len(by["runai_workload_info"]) and any(by.get("runai_workload_pending_scheduling_message", [])),
        "end to end: every simulated workload's fields checked, a Pending one among them", checked)
    infos = [s["metric"] for s in by["runai_workload_info"]]
    tap(any("requested_pods_min" in m for m in infos) and any("parallelism" in m for m in infos)
        and len(by.get("runai_pod_gpu_memory_allocated_bytes", [])) == len(running) > 0,
        "end to end: the data has requestedPods min/max and parallelism/completions, GPU memory for each "
        "running pod", len(by.get("runai_pod_gpu_memory_allocated_bytes", [])))

    def bad_levels():
        st, _, data = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + r4})
        return st, metric_value(data.decode(errors="replace"), "strata_registry_element_level_invalid_total")
    st0, n0 = bad_levels()
    # an agent that sends a 0-based level: kept, level null, counted once (however often it is sent)
    wid = sorted(by["runai_workload_info"], key=lambda s: s["metric"]["workload_name"])[0]["metric"]["workload_id"]
    now = int(time.time() * 1000)
    bad = [("__name__", "runai_workload_element_info"), ("element_id", "0badbad0-0000-4000-8000-000000000000"),
           ("hierarchy_level", "0"), ("name", "zz-bad-level"), ("workload_id", wid)]
    stw = [srv.write(rw1([(bad, [(1.0, now - 1000 * k)])]), w4)[0] for k in (2, 1)]
    st1, n1 = bad_levels()
    st, _, data = srv.get(W + "/" + wid + "/elements", r4)
    els = json.loads(data).get("elements", []) if st == 200 else []
    tap((st0, st1, st) == (200, 200, 200) and stw == [204, 204] and n0 == 0 and n1 == 1
        and els and els[-1].get("name") == "zz-bad-level" and els[-1].get("hierarchyLevel", 0) is None,
        "end to end: an out-of-range hierarchy_level is kept as null, sorted last and counted once in /metrics",
        "%s %s %s %s %s" % (stw, n0, n1, st, els[-1:]))


def end_to_end(api, srv, tmp, r4, w4):
    wl = 8   # workload 7 is Pending (w % 8 == 7)
    ack = os.path.join(tmp, "ack.log")
    tokfile = os.path.join(tmp, "w4.jwt")
    with open(tokfile, "w") as fh:
        fh.write(w4)
    load = os.path.join(BUILD, "strata-load")
    run = subprocess.run([load, "--url=%s/api/v1/write" % srv.url, "--bearer-token-file=" + tokfile,
                          "--workloads=%d" % wl, "--nodes=1", "--backfill=1", "--ack-log=" + ack, "--quiet",
                          "--concurrency=1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    tap(run.returncode == 0, "strata-load backfilled 1 h of %d workloads for tenant 4" % wl,
        run.stdout.decode(errors="replace")[-500:])
    exp = subprocess.run([load, "--expand-ack=" + ack], stdout=subprocess.PIPE, timeout=300)
    series = [json.loads(line) for line in exp.stdout.decode().splitlines() if line.strip()]
    tap(exp.returncode == 0 and series, "strata-load --expand-ack re-derived the acknowledged samples", len(series))
    if not series:
        return
    e2e_fields(api, srv, series, r4, w4)
    # the registry's view: workload ids, names, pods
    info = {s["metric"]["workload_id"]: s["metric"] for s in series if s["metric"]["__name__"] == "runai_workload_info"}
    pods = {}
    for s in series:
        if s["metric"]["__name__"] == "runai_pod_info":
            m = s["metric"]
            pods[(m["namespace"], m["pod"])] = (m["workload_id"], min(s["timestamps"]), max(s["timestamps"]) + 300000)
    st, _, body = api.get(W + "?limit=500&sortBy=name", r4, P_LIST)
    tap(st == 200 and sorted(w["id"] for w in body.get("workloads", [])) == sorted(info)
        and [w["name"] for w in body["workloads"]] == sorted(m["workload_name"] for m in info.values()),
        "end to end: every simulated workload is listed with its name", body if st != 200 else
        [w["name"] for w in body.get("workloads", [])])
    tmin = min(min(s["timestamps"]) for s in series)
    tmax = max(max(s["timestamps"]) for s in series)
    # a range that is not aligned to the rollups (raw reads), with history before it for counters
    start = tmin + 5 * MIN + 7000
    end = start + 48 * MIN
    if end > tmax:
        end = tmax
    n = 6
    edges = bucket_edges(start, end, n)

    def belongs(m, wid, t):
        if "workload_id" in m:
            return m["workload_id"] == wid
        p = pods.get((m.get("namespace"), m.get("pod")))
        return p is not None and p[0] == wid and p[1] <= t < p[2]

    def member_samples(s, wid, lookback=0):
        return [(t, v) for t, v in zip(s["timestamps"], s["values"])
                if belongs(s["metric"], wid, t) and start - lookback <= t <= end]

    def expect(wid, mtype):
        name, cond, agg, per_gpu = {
            "GPU_UTILIZATION": ("DCGM_FI_DEV_GPU_UTIL", {}, "avg", True),
            "GPU_MEMORY_USAGE_BYTES": ("DCGM_FI_DEV_FB_USED", {}, "avg", True),
            "CPU_USAGE_CORES": ("container_cpu_usage_seconds_total", {"container!": ("", "POD")}, "rate", False),
            "CPU_MEMORY_USAGE_BYTES": ("container_memory_working_set_bytes", {"container!": ("", "POD")}, "avg", False),
            "CPU_REQUEST_CORES": ("kube_pod_container_resource_requests", {"resource": "cpu"}, "last", False),
            "GPU_ALLOCATION": ("runai_workload_gpu_allocation", {}, "last", False),
            "NIM_REQUEST_SUCCESS_TOTAL": ("request_success_total", {}, "increase", False),
            "NIM_NUM_REQUESTS_RUNNING": ("num_requests_running", {}, "avg", False),
            "POD_COUNT": ("runai_pod_info", {}, "present", False),
            "RUNNING_POD_COUNT": ("kube_pod_status_phase", {"phase": "Running"}, "last", False),
            "NVLINK_BANDWIDTH_TOTAL": ("DCGM_FI_PROF_NVLINK_", {}, "avg", True),
        }[mtype]
        per = {}
        for s in series:
            m = s["metric"]
            if m["__name__"] != name and not (mtype == "NVLINK_BANDWIDTH_TOTAL" and
                                              m["__name__"] in (name + "TX_BYTES", name + "RX_BYTES")):
                continue
            if "phase" in cond and m.get("phase") != cond["phase"]:
                continue
            if "container!" in cond and m.get("container", "") in cond["container!"]:
                continue
            if "resource" in cond and m.get("resource") != cond["resource"]:
                continue
            lb = 300000 if agg in ("rate", "increase") else 0
            smp = member_samples(s, wid, lb)
            if not smp:
                continue
            if agg == "present":
                steps = {b: 1.0 for b in step_last(smp, edges)}
            elif agg == "avg":
                steps = step_avg(smp, edges)
            elif agg == "last":
                steps = step_last(smp, edges)
            else:
                steps = step_increase(smp, edges, lb)
                if agg == "rate":
                    steps = {b: v / ((edges[b] - edges[b - 1]) / 1000) for b, v in steps.items()}
            if not steps:
                continue
            key = (m.get("gpu"), m.get("node") or m.get("Hostname")) if per_gpu else None
            if mtype == "NVLINK_BANDWIDTH_TOTAL":
                key = key + (m["__name__"],)
            per.setdefault(key, []).append(steps)
        if mtype == "NVLINK_BANDWIDTH_TOTAL":
            # TX and RX averaged per GPU and step on their own, then added
            merged = {}
            for key, lst in per.items():
                avg = {}
                for b in range(1, n + 1):
                    xs = [d[b] for d in lst if b in d]
                    if xs:
                        avg[b] = sum(xs) / len(xs)
                tot = merged.setdefault(key[:2], {})
                for b, v in avg.items():
                    tot[b] = tot.get(b, 0.0) + v
            per = {k: [v] for k, v in merged.items()}
        out = []
        for key in sorted(per, key=lambda k: (k[1], int(k[0])) if k else ("", 0)):
            lst = per[key]
            steps = {}
            for b in range(1, n + 1):
                xs = [d[b] for d in lst if b in d]
                if xs:
                    steps[b] = (sum(xs) / len(xs)) if per_gpu else sum(xs)
            if mtype == "GPU_MEMORY_USAGE_BYTES":
                steps = {b: v * 1048576 for b, v in steps.items()}
            m = {"type": mtype}
            if per_gpu:
                m["labels"] = {"gpu": key[0], "node": key[1]}
            m["values"] = [{"value": fmt(steps[b]), "timestamp": iso(edges[b])} for b in sorted(steps)]
            out.append(m)
        return out or [{"type": mtype, "values": []}]

    def expect_hist(wid, mtype):
        """increase per le summed over the workload's series; percentiles as histogram_quantile."""
        base = "time_to_first_token_seconds_bucket"
        per_le = {}
        for s in series:
            m = s["metric"]
            if m["__name__"] != base:
                continue
            smp = member_samples(s, wid, 300000)
            steps = step_increase(smp, edges, 300000)
            for b, v in steps.items():
                per_le.setdefault(m["le"], {}).setdefault(b, 0.0)
                per_le[m["le"]][b] += v
        les = sorted(per_le, key=lambda x: float(x))
        out = []
        for b in range(1, n + 1):
            if not any(b in per_le[le] for le in les):
                continue
            cum = [(float(le), per_le[le].get(b, 0.0)) for le in les]
            if mtype.endswith("_PERCENTILES"):
                total = cum[-1][1]
                if total == 0:
                    continue
                data = {}
                for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
                    rank = q * total
                    i = next(i for i, (_, c) in enumerate(cum) if c >= rank)
                    if i == len(cum) - 1:
                        v = cum[-2][0]
                    else:
                        lo_b, lo_c = (cum[i - 1][0], cum[i - 1][1]) if i > 0 else (0.0, 0.0)
                        v = lo_b + (cum[i][0] - lo_b) * ((rank - lo_c) / (cum[i][1] - lo_c))
                    data[key] = fmt(v)
            else:
                data = {le: fmt(per_le[le].get(b, 0.0)) for le in les}
            out.append({"timestamp": iso(edges[b]), "data": data})
        return {"type": mtype, "values": out}

    def same_hist(h, w):
        return h.get("type") == w["type"] and len(h.get("values", [])) == len(w["values"]) and all(
            hv["timestamp"] == wv["timestamp"] and list(hv["data"]) == list(wv["data"]) and all(
                abs(float(hv["data"][k]) - float(wv["data"][k])) <= 1e-9 * max(1.0, abs(float(wv["data"][k])))
                for k in wv["data"]) for hv, wv in zip(h["values"], w["values"]))

    types = ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES",
             "CPU_REQUEST_CORES", "GPU_ALLOCATION", "NIM_REQUEST_SUCCESS_TOTAL", "NIM_NUM_REQUESTS_RUNNING",
             "POD_COUNT", "RUNNING_POD_COUNT", "NVLINK_BANDWIDTH_TOTAL"]
    htypes = ["NIM_TIME_TO_FIRST_TOKEN_SECONDS", "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"]
    by_index = sorted(info, key=lambda w: info[w]["workload_name"])
    chosen = [w for w in info if info[w]["workload_type"] in ("Training",)][:1] + \
             [w for w in info if info[w]["workload_type"] not in ("Training",) and
              any(p[0] == w for p in pods.values())][:2]
    pending = [s["metric"]["workload_id"] for s in series if s["metric"]["__name__"] == "runai_workload_phase"
               and s["metric"]["phase"] == "Pending" and s["values"][-1] == 1]
    chosen += pending[:1]   # Pending: no GPU, cAdvisor or NIM series, but requests and a pod
    for wid in chosen or by_index[:2]:
        got, hist, st = [], [], 200
        for part in (types[:6], types[6:] + htypes):   # at most 10 types a request
            st1, _, body = api.get("%s/%s/metrics?metricType=%s&start=%s&end=%s&numberOfSamples=%d"
                                   % (W, wid, ",".join(part), iso(start), iso(end), n), r4, P_MET)
            st = max(st, st1)
            got += body.get("measurements", []) if isinstance(body, dict) else []
            hist += body.get("histogram", []) if isinstance(body, dict) else []
        for ht in htypes:
            want = expect_hist(wid, ht)
            have = [h for h in hist if h.get("type") == ht]
            tap(st == 200 and len(have) == 1 and same_hist(have[0], want),
                "end to end: %s of %s (%s)%s" % (ht, info[wid]["workload_name"], info[wid]["workload_type"],
                                                 "" if want["values"] else ", no data"),
                "got %s\nwant %s" % (json.dumps(have)[:600], json.dumps(want)[:600]))
        for mt in types:
            want = expect(wid, mt)
            have = [m for m in got if m.get("type") == mt]
            close = len(have) == len(want) and all(
                h.get("labels") == w.get("labels") and len(h["values"]) == len(w["values"]) and all(
                    hv["timestamp"] == wv["timestamp"] and
                    abs(float(hv["value"]) - float(wv["value"])) <= 1e-9 * max(1.0, abs(float(wv["value"])))
                    for hv, wv in zip(h["values"], w["values"])) for h, w in zip(have, want))
            nonempty = any(w["values"] for w in want)
            tap(st == 200 and close, "end to end: %s of %s (%s)%s" % (mt, info[wid]["workload_name"],
                                                                     info[wid]["workload_type"],
                                                                     "" if nonempty else ", no data"),
                "got %s\nwant %s" % (json.dumps(have)[:600], json.dumps(want)[:600]))
    # telemetry over the simulated cluster: counts by Phase from the catalog (w % 8 == 7 Pending)
    st, _, body = api.get(W + "/telemetry?telemetryType=WORKLOADS_COUNT&groupBy=Phase", r4, P_TEL)
    pend = sum(1 for w in range(wl) if w % 8 == 7)
    want = [(str(c), p) for c, p in ((pend, "Pending"), (wl - pend, "Running")) if c]
    got = [(v["value"], v["groups"][0]["value"]) for v in body.get("values", [])] if isinstance(body, dict) else body
    tap(st == 200 and got == want, "end to end: telemetry WORKLOADS_COUNT by Phase", got)
    st, _, body = api.get(W + "/telemetry?telemetryType=GPU_ALLOCATION", r4, P_TEL)
    alloc_sum = 0.0
    for s in series:
        if s["metric"]["__name__"] == "runai_workload_gpu_allocation":
            alloc_sum += s["values"][-1]
    tap(st == 200 and body["values"][0]["value"] == fmt(alloc_sum),
        "end to end: telemetry GPU_ALLOCATION = the latest allocations summed (%s)" % fmt(alloc_sum), body)
    e2e_cluster_filter_and_workload_resources(api, srv, info, r4, w4)


def e2e_cluster_filter_and_workload_resources(api, srv, info, r4, w4):
    """filterBy=clusterId in any letter case (== and !=; other operators on bytes), and a
    container resource series that carries only workload_id, joined to its workload."""
    cluster = {m["cluster_id"] for m in info.values()}
    tap(len(cluster) == 1, "end to end: one simulated cluster", cluster)
    cid = cluster.pop()
    n = len(info)
    for term, want in (("clusterId==" + cid, n), ("clusterId==" + cid.upper(), n), ("clusterId!=" + cid.upper(), 0),
                       ("clusterId=^" + cid[:8].upper(), 0 if cid[:8] != cid[:8].upper() else n),
                       ("clusterId=^" + cid[:8], n)):
        st, _, body = api.get(W + "/count?filterBy=" + urllib.parse.quote(term), r4, P_COUNT)
        st2, _, lst = api.get(W + "?limit=500&filterBy=" + urllib.parse.quote(term), r4, P_LIST)
        tap(st == 200 and body == {"count": want} and st2 == 200 and len(lst.get("workloads", [])) == want,
            "end to end: filterBy=%s matches %d" % (term, want), "%s %s" % (body, st2))
    # a running workload: a launcher container's request with workload_id only
    wid = sorted((w for w, m in info.items() if m.get("k8s_phase") == "Running"),
                 key=lambda w: info[w]["workload_name"])[0]
    st0, _, before = api.get(W + "/" + wid, r4, W_ID)
    now = int(time.time() * 1000)
    lab = [("__name__", "kube_pod_container_resource_requests"), ("container", "launcher"), ("resource", "cpu"),
           ("workload_id", wid)]
    stw = srv.write(rw1([(lab, [(0.25, now - 2000), (0.25, now - 1000)])]), w4)[0]
    st1, _, after = api.get(W + "/" + wid, r4, W_ID)
    pb, pa = (b.get("podsRequestedResources") or {} for b in (before, after))
    tap((st0, stw, st1) == (200, 204, 200) and before.get("runningPods", 0) > 0
        and pa.get("cpu", {}).get("request") == pb.get("cpu", {}).get("request") + 0.25
        and pa.get("cpu", {}).get("limit") == pb.get("cpu", {}).get("limit")
        and after["allocatedResources"]["cpu"] == before["allocatedResources"]["cpu"] + 0.25
        and after["allocatedResources"]["gpuMemory"] == before["allocatedResources"]["gpuMemory"],
        "end to end: a container resource series with only workload_id joins its workload (pods' and allocated cpu)",
        "%s %s %s\nbefore %s %s\nafter %s %s" % (st0, stw, st1, pb, before.get("allocatedResources"), pa,
                                                 after.get("allocatedResources")))


def main():
    tmp = tempfile.mkdtemp(prefix="strata-wl-")
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as fh:
        fh.write(SECRET)
    srv = None
    try:
        srv = Server(os.path.join(tmp, "data"), secret)
        api = Api(srv)
        f = Fixture().build()
        w1, w2, w4 = token(1, "metrics:write"), token(2, "metrics:write"), token(4, "metrics:write")
        r1, r2, r3, r4 = (token(t, "metrics:read") for t in (1, 2, 3, 4))
        st1 = srv.write(rw1(f.tenant1), w1)[0]
        st2 = srv.write(rw1(f.tenant2), w2)[0]
        tap(st1 == 204 and st2 == 204, "fixture written by remote write (tenants 1 and 2)", "%s %s" % (st1, st2))
        golden(api, f, r1)
        lists(api, f, r1)
        validation(api, f, r1, w1)
        isolation(api, f, r1, r2, r3)
        uuid_case(api, f, r1)
        metrics_counter(srv, api, f, r1)
        end_to_end(api, srv, tmp, r4, w4)
        tap(srv.stop() == 0, "SIGTERM exits 0")
        srv = Server(os.path.join(tmp, "data"), secret, ["--query-max-samples=60", "--max-points=50"])
        api.srv = srv
        after_restart(srv, api, f, r1)
        tap(srv.stop() == 0, "SIGTERM exits 0 after the restart")
        srv = None
        # --auth=none: every request is tenant 0, without a token
        srv = Server(os.path.join(tmp, "anon"), None)
        api.srv = srv
        st = srv.write(rw1(f.tenant1))[0]
        st1, _, cnt = api.get(W + "/count", None, P_COUNT)
        st2, _, body = api.get(W + "/" + A, None, W_ID)
        st3, _, tel = api.get(W + "/telemetry?telemetryType=GPU_ALLOCATION", None, P_TEL)
        tap((st, st1, st2, st3) == (204, 200, 200, 200) and cnt == {"count": 5} and body.get("tenantId") == 0
            and tel["values"][0]["value"] == "3", "--auth=none: tenant 0 without a token",
            "%s %s %s %s" % (st, cnt, body if st2 != 200 else body.get("tenantId"), tel))
        tap(not api.schema_errors, "every JSON body validates against the Run:ai spec",
            "\n".join(api.schema_errors[:20]))
    finally:
        if srv:
            if FAILS:
                print("# strata log:\n# " + srv.tail().replace("\n", "\n# "))
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % TAPS)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
