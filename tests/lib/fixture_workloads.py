"""fixture_workloads.py: the hand-made cluster tests/integration/test_workloads_api.py checks.

Time base: T0 = a whole hour 2 to 3 hours before now; minute k is T0 + k min; the "state"
series (info, phase, allocation, pod info, pod phase, GPU utilisation) run every minute from
k = 0 (or their own start) up to the last whole minute before now (K), so the live workloads
hold at the server's clock. The metric series the golden values come from run over k = 0..60,
the hour [T0, T0 + 1h] the metrics queries ask for (numberOfSamples=4: buckets of 15 min).

Tenant 1:
  A train-a  Training/Train, project p1/dep d1, 2 pods (train-a-0 from k0 on node-1 with
             GPUs 0 and 1, train-a-1 from k20 on node-2), Running, 2 GPUs allocated.
             GPU 0 util = k (k < 60, then 50), GPU 1 = 0 throughout (idle), both scraped
             30 s after the minute (so no sample sits exactly on a bucket edge).
             CPU counter of train-a-0/main: 30k for k <= 30, reset at k31 to 10, then
             10 + 60(k - 31); a container="POD" series with huge values must not count.
             cpu requests: train-a-0 2 cores; train-a-1 1 core (k20..39) then 3 (k40..).
             cpu limits: train-a-0 4, train-a-1 6. memory requests 1 GiB / 2 GiB.
  C nim-c    Inference/Deploy, project p2/dep d1, no created_at label (info from k5),
             Running from k5, 1 GPU, pod nim-c-0 on node-2; an endpoint; 3 elements of 5;
             TTFT histogram buckets (0.1, 0.5, 1, 2, +Inf) growing by 10, 40, 80, 95, 100
             per minute; request_success_total +7 a minute.
  D pipe-d   Workspace/Build, project p1/dep d2: Pending k0..9, Running k10..39, Completed
             from k40 (allocation 1 while Running, then 0).
  E del-e    Training/Train, project p2/dep d2: info and phase k0..30, stale markers at k31.
  P1 pend-1  Training/Train, p1/d1, Pending since k0 (1h-6h at now).
  P2 pend-2  Training/Train, p2/d2, Pending since K-20 (0-1h at now).
Tenant 2:
  X other-x  Training/Train, Running, 4 GPUs.
"""
import time

from strata_client import STALE

A = "aaaaaaaa-1111-4aaa-8aaa-000000000001"
C = "cccccccc-1111-4ccc-8ccc-000000000003"
D = "dddddddd-1111-4ddd-8ddd-000000000004"
E = "eeeeeeee-1111-4eee-8eee-000000000005"
P1 = "ffffffff-1111-4fff-8fff-000000000006"
P2 = "ffffffff-2222-4fff-8fff-000000000007"
X = "99999999-1111-4999-8999-000000000009"
EL_ROOT = "e1e1e1e1-0000-4000-8000-000000000001"
EL_A = "e1e1e1e1-0000-4000-8000-00000000000a"
EL_B = "e1e1e1e1-0000-4000-8000-00000000000b"
CLUSTER = "c1c1c1c1-0000-4000-8000-00000000c1c1"
MIN = 60000
GIB = 1073741824


class Fixture:
    def __init__(self, now_ms=None):
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self.t0 = now // 3600000 * 3600000 - 2 * 3600000
        self.K = (now // MIN * MIN - self.t0) // MIN          # last whole minute <= now
        self.tenant1 = []
        self.tenant2 = []

    def t(self, k):
        return self.t0 + k * MIN

    def series(self, out, labels, fn, k0=0, k1=None, offset_ms=0):
        """fn(k) -> value or None (no sample) at minute k + offset_ms; k over [k0, k1] (k1 None = K)."""
        k1 = self.K if k1 is None else k1
        samples = [(fn(k), self.t(k) + offset_ms) for k in range(k0, k1 + 1) if fn(k) is not None]
        out.append(([("__name__", labels[0])] + sorted(labels[1:]), samples))

    def info(self, out, wid, name, wtype, cat, proj, dep, extra=(), k0=0, k1=None, stale_at=None):
        pname = {"p1": "proj-one", "p2": "proj-two"}[proj]
        dname = {"d1": "dep-one", "d2": "dep-two"}[dep]
        labels = ["runai_workload_info", ("workload_id", wid), ("workload_name", name),
                  ("workload_type", wtype), ("category", cat), ("project_id", proj),
                  ("project_name", pname), ("department_id", dep), ("department_name", dname),
                  ("cluster_id", CLUSTER), ("namespace", "runai-" + pname), ("submitted_by", "alice"),
                  ("priority_class", "train"), ("priority", "50"), ("image", "img:1")] + list(extra)
        self.series(out, labels, lambda k: STALE if k == stale_at else 1.0, k0, stale_at if stale_at else k1)

    def build(self):
        T1, K = self.tenant1, self.K
        s = self.series
        # ---- A
        self.info(T1, A, "train-a", "Training", "Train", "p1", "d1",
                  [("created_at", _iso(self.t0 - 10 * MIN)), ("requested_nodepools", "pool-a"),
                   ("current_nodepools", "pool-a")])
        s(T1, ["runai_workload_phase", ("workload_id", A), ("phase", "Running")], lambda k: 1.0)
        s(T1, ["runai_workload_gpu_allocation", ("workload_id", A)], lambda k: 2.0)
        s(T1, ["runai_workload_gpu_memory_request_bytes", ("workload_id", A)], lambda k: 1e9)
        for pod, node, k0 in (("train-a-0", "node-1", 0), ("train-a-1", "node-2", 20)):
            s(T1, ["runai_pod_info", ("namespace", "runai-proj-one"), ("pod", pod), ("workload_id", A),
                   ("node", node), ("nodepool", "pool-a")], lambda k: 1.0, k0)
            s(T1, ["kube_pod_status_phase", ("namespace", "runai-proj-one"), ("pod", pod), ("phase", "Running")],
              (lambda k: 1.0) if pod == "train-a-0" else (lambda k: 0.0 if k < 25 else 1.0), k0)
        gpu = lambda g: ["DCGM_FI_DEV_GPU_UTIL", ("gpu", g), ("node", "node-1"), ("namespace", "runai-proj-one"),
                         ("pod", "train-a-0"), ("container", "main")]
        s(T1, gpu("0"), lambda k: float(k) if k < 60 else 50.0, 0, K - 1, 30000)
        s(T1, gpu("1"), lambda k: 0.0, 0, K - 1, 30000)
        cpu = lambda c: ["container_cpu_usage_seconds_total", ("namespace", "runai-proj-one"), ("pod", "train-a-0"),
                         ("container", c), ("cpu", "total")]
        s(T1, cpu("main"), lambda k: 30.0 * k if k <= 30 else 10.0 + 60.0 * (k - 31), 0, 60)
        s(T1, cpu("POD"), lambda k: 1e6 * k, 0, 60)
        for pod, res, unit, fn, k0 in (
                ("train-a-0", "cpu", "core", lambda k: 2.0, 0),
                ("train-a-1", "cpu", "core", lambda k: 1.0 if k < 40 else 3.0, 20),
                ("train-a-0", "memory", "byte", lambda k: float(GIB), 0),
                ("train-a-1", "memory", "byte", lambda k: 2.0 * GIB, 20)):
            s(T1, ["kube_pod_container_resource_requests", ("namespace", "runai-proj-one"), ("pod", pod),
                   ("container", "main"), ("resource", res), ("unit", unit)], fn, k0, 60)
        for pod, fn, k0 in (("train-a-0", lambda k: 4.0, 0), ("train-a-1", lambda k: 6.0, 20)):
            s(T1, ["kube_pod_container_resource_limits", ("namespace", "runai-proj-one"), ("pod", pod),
                   ("container", "main"), ("resource", "cpu"), ("unit", "core")], fn, k0, 60)
        # ---- C
        self.info(T1, C, "nim-c", "Inference", "Deploy", "p2", "d1",
                  [("requested_nodepools", "pool-b"), ("current_nodepools", "pool-b")], k0=5)
        s(T1, ["runai_workload_phase", ("workload_id", C), ("phase", "Running")], lambda k: 1.0, 5)
        s(T1, ["runai_workload_gpu_allocation", ("workload_id", C)], lambda k: 1.0, 5)
        s(T1, ["runai_pod_info", ("namespace", "runai-proj-two"), ("pod", "nim-c-0"), ("workload_id", C),
               ("node", "node-2"), ("nodepool", "pool-b")], lambda k: 1.0, 5)
        s(T1, ["kube_pod_status_phase", ("namespace", "runai-proj-two"), ("pod", "nim-c-0"), ("phase", "Running")],
          lambda k: 1.0, 5)
        s(T1, ["DCGM_FI_DEV_GPU_UTIL", ("gpu", "3"), ("node", "node-2"), ("namespace", "runai-proj-two"),
               ("pod", "nim-c-0")], lambda k: 40.0, 5)
        s(T1, ["runai_workload_endpoint_info", ("workload_id", C), ("host", "nim-c.example"), ("port", "8000"),
               ("path", "/v1"), ("protocol", "http"), ("url", "http://nim-c.example:8000/v1"),
               ("tls_enabled", "false")], lambda k: 1.0, 5)
        for eid, name, level, parent in ((EL_ROOT, "nim-c", "1", ""), (EL_B, "nim-c-pod-b", "2", EL_ROOT),
                                         (EL_A, "nim-c-pod-a", "2", EL_ROOT)):
            s(T1, ["runai_workload_element_info", ("workload_id", C), ("element_id", eid), ("name", name),
                   ("hierarchy_level", level), ("parent_id", parent), ("created_at", _iso(self.t(5))),
                   ("k8s_uid", "uid-" + name), ("k8s_name", name), ("k8s_group", "apps"), ("k8s_version", "v1"),
                   ("k8s_kind", "Deployment" if level == "1" else "Pod")], lambda k: 1.0, 5)
        s(T1, ["runai_workload_elements_total", ("workload_id", C)], lambda k: 5.0, 5)
        for le, per in (("0.1", 10), ("0.5", 40), ("1", 80), ("2", 95), ("+Inf", 100)):
            s(T1, ["time_to_first_token_seconds_bucket", ("namespace", "runai-proj-two"), ("pod", "nim-c-0"),
                   ("model_name", "llama"), ("le", le)], lambda k, per=per: float(per * k), 0, 60)
        s(T1, ["request_success_total", ("namespace", "runai-proj-two"), ("pod", "nim-c-0"), ("model_name", "llama")],
          lambda k: 7.0 * k, 0, 60)
        # ---- D
        self.info(T1, D, "pipe-d", "Workspace", "Build", "p1", "d2")
        for ph, fn in (("Pending", lambda k: 1.0 if k < 10 else 0.0),
                       ("Running", lambda k: 1.0 if 10 <= k < 40 else 0.0),
                       ("Completed", lambda k: 1.0 if k >= 40 else 0.0)):
            s(T1, ["runai_workload_phase", ("workload_id", D), ("phase", ph)], fn)
        s(T1, ["runai_workload_gpu_allocation", ("workload_id", D)], lambda k: 1.0 if 10 <= k < 40 else 0.0)
        # ---- E (deleted: stale markers at k31)
        self.info(T1, E, "del-e", "Training", "Train", "p2", "d2", stale_at=31)
        s(T1, ["runai_workload_phase", ("workload_id", E), ("phase", "Running")],
          lambda k: STALE if k == 31 else 1.0, 0, 31)
        # ---- P1, P2 (Pending)
        self.info(T1, P1, "pend-1", "Training", "Train", "p1", "d1")
        s(T1, ["runai_workload_phase", ("workload_id", P1), ("phase", "Pending")], lambda k: 1.0)
        s(T1, ["runai_workload_gpu_allocation", ("workload_id", P1)], lambda k: 0.0)
        self.info(T1, P2, "pend-2", "Training", "Train", "p2", "d2", k0=K - 20)
        s(T1, ["runai_workload_phase", ("workload_id", P2), ("phase", "Pending")], lambda k: 1.0, K - 20)
        # ---- tenant 2
        self.info(self.tenant2, X, "other-x", "Training", "Train", "p1", "d1")
        s(self.tenant2, ["runai_workload_phase", ("workload_id", X), ("phase", "Running")], lambda k: 1.0)
        s(self.tenant2, ["runai_workload_gpu_allocation", ("workload_id", X)], lambda k: 4.0)
        return self


def _iso(ms):
    from strata_client import iso
    return iso(ms)
