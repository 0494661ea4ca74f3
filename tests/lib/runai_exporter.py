"""runai_exporter.py: scrape targets that serve a small Run:ai GPU cluster in the Prometheus text format.

Four targets, each a node (node-0 .. node-3) with its own scrape counter n (1, 2, 3, ... per
request it serves); every value is a function of (target, n) with few significant digits, so
engines that store decimals (VictoriaMetrics) give them back bit-exactly.  The series are the
input data model (docs/architecture.md) and cover the 23 metric types of the metrics endpoint,
the registry, telemetry and reports.  A workload's series are spread over targets the way a real
cluster spreads them (the Run:ai exporter for its info, each node's exporters for its pods), so
that a receiver of only some targets sees workloads in part:

  W1 train-multi  Training/Train, p1/d1, 3 GPUs: info, phase, allocation on node-0;
                  pod train-0 on node-0 (GPUs 0 and 1, GPU 1 always at 0%: idle),
                  pod train-1 on node-1 (GPU 0); CPU counter of train-0 restarts at n=6;
                  train-1's cpu request goes from 1 to 3 cores at n=5.
  W2 nim-serve    Inference/Deploy, p2/d1 (project name with quotes and UTF-8), 1 GPU, all on
                  node-1: NIM plain names (requests, cache, TTFT and e2e-latency histograms),
                  NVLink TX/RX; its pod is Pending until n=4, then Running.
  W3 vllm-chat    Inference/Deploy, p2/d2: info on node-2, its pod on node-3 with the vllm:
                  names only.
  W4 notebook     Workspace/Build, p1/d2, 0.5 GPU, on node-2, its GPU at 0% (idle).
  W5 pend-job     Training/Train, p1/d1, on node-3: Pending, no node, allocation 0.
  W6 short-job    Training/Train, p1/d2, 1 GPU, on node-2, served by its scrapes 1..5 only: at
                  the 6th the series are gone, so the scraper writes a stale marker for each.

    from runai_exporter import start_targets, WORKLOADS
    targets = start_targets()          # [(server, state)], state["n"] = scrapes served
    port = targets[0][0].server_address[1]
"""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLUSTER = "6b1d6f0e-0000-4000-8000-0000000ce2e0"
W1 = "6b1d6f0e-0000-4000-8000-0000000e2e01"
W2 = "6b1d6f0e-0000-4000-8000-0000000e2e02"
W3 = "6b1d6f0e-0000-4000-8000-0000000e2e03"
W4 = "6b1d6f0e-0000-4000-8000-0000000e2e04"
W5 = "6b1d6f0e-0000-4000-8000-0000000e2e05"
W6 = "6b1d6f0e-0000-4000-8000-0000000e2e06"
WORKLOADS = [W1, W2, W3, W4, W5, W6]
W6_LAST = 5     # W6's last scrape (of node-2); its series end with stale markers at the next
TARGETS = 4
NS = {"p1": "runai-p1", "p2": "runai-p2"}
PNAME = {"p1": "proj-one", "p2": 'serve "\u03b2" team \u2713'}
DNAME = {"d1": "dep-one", "d2": "dep-two"}
TTFT_LE = ["0.1", "0.5", "1", "2.5", "+Inf"]
E2E_LE = ["0.5", "1", "2", "5", "10", "+Inf"]


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Out:
    def __init__(self):
        self.lines = []

    def add(self, name, labels, value):
        """One sample line (no TYPE lines: the scraper stores every family alike)."""
        ls = ",".join('%s="%s"' % (k, esc(v)) for k, v in labels)
        self.lines.append("%s{%s} %s" % (name, ls, _num(value)))


def _num(v):
    if isinstance(v, int) or float(v).is_integer():
        return "%d" % v
    return repr(float(v))


def _info(o, wid, name, wtype, cat, proj, dep, pool, phase, alloc, mem_req):
    o.add("runai_workload_info", [
        ("workload_id", wid), ("workload_name", name), ("workload_type", wtype), ("category", cat),
        ("project_id", proj), ("project_name", PNAME[proj]), ("department_id", dep),
        ("department_name", DNAME[dep]), ("cluster_id", CLUSTER), ("namespace", NS[proj]),
        ("submitted_by", "alice"), ("priority_class", "train"), ("priority", "50"), ("image", "img:1"),
        ("requested_nodepools", pool)] + ([("current_nodepools", pool)] if phase != "Pending" else []), 1)
    o.add("runai_workload_phase", [("workload_id", wid), ("phase", phase)], 1)
    o.add("runai_workload_gpu_allocation", [("workload_id", wid)], alloc)
    if mem_req:
        o.add("runai_workload_gpu_memory_request_bytes", [("workload_id", wid)], mem_req)


def _pod(o, n, wid, proj, pod, node, pool, running=True, cpu_req=2, restart_at=None):
    ns = NS[proj]
    o.add("runai_pod_info", [("namespace", ns), ("pod", pod), ("workload_id", wid)]
          + ([("node", node)] if running is not None else []) + [("nodepool", pool)], 1)
    for ph in ("Pending", "Running"):
        o.add("kube_pod_status_phase", [("namespace", ns), ("pod", pod), ("phase", ph)],
              1 if (ph == "Running") == bool(running) else 0)
    if running is None:  # never scheduled: no node series
        return
    res = [("namespace", ns), ("pod", pod), ("container", "main")]
    o.add("kube_pod_container_resource_requests", res + [("resource", "cpu"), ("unit", "core")], cpu_req)
    o.add("kube_pod_container_resource_requests", res + [("resource", "memory"), ("unit", "byte")], 4294967296)
    o.add("kube_pod_container_resource_limits", res + [("resource", "cpu"), ("unit", "core")], 4)
    o.add("kube_pod_container_resource_limits", res + [("resource", "memory"), ("unit", "byte")], 8589934592)
    cpu = n * 0.75 if restart_at is None or n < restart_at else (n - restart_at) * 0.75 + 0.25
    o.add("container_cpu_usage_seconds_total", res + [("cpu", "total")], cpu)
    o.add("container_cpu_usage_seconds_total", [("namespace", ns), ("pod", pod), ("container", "POD"),
                                                ("cpu", "total")], n * 1000)
    o.add("container_memory_working_set_bytes", res, 2147483648 + n * 65536)
    o.add("container_memory_working_set_bytes", [("namespace", ns), ("pod", pod)], 9999999999)


def _gpu(o, n, proj, pod, node, gpu, util, fb, nvlink=False):
    labels = [("gpu", str(gpu)), ("UUID", "GPU-%s-%d" % (node, gpu)), ("Hostname", node),
              ("modelName", "NVIDIA H200"), ("namespace", NS[proj]), ("pod", pod), ("container", "main")]
    o.add("DCGM_FI_DEV_GPU_UTIL", labels, util)
    o.add("DCGM_FI_DEV_FB_USED", labels, fb)
    if nvlink:
        o.add("DCGM_FI_PROF_NVLINK_TX_BYTES", labels, 1000000 + n * 2500)
        o.add("DCGM_FI_PROF_NVLINK_RX_BYTES", labels, 500000 + n * 1250.5)


def _nim(o, n, proj, pod, prefix=""):
    base = [("model_name", "llama-3"), ("namespace", NS[proj]), ("pod", pod)]
    o.add(prefix + "num_requests_running", base, n % 5)
    o.add(prefix + "num_requests_waiting", base, n % 3)
    o.add(prefix + "num_request_max", base, 64 + n % 2)
    o.add(prefix + "request_success_total", base, 5 * n + n % 2)
    o.add(prefix + "request_failure_total", base, n // 3)
    o.add(prefix + "gpu_cache_usage_perc", base, (n % 8) * 0.125)
    ttft = [2 * n, 5 * n, 8 * n + n % 3, 9 * n + n % 3, 10 * n + n % 3]
    for le, c in zip(TTFT_LE, ttft):
        o.add(prefix + "time_to_first_token_seconds_bucket", base + [("le", le)], c)
    o.add(prefix + "time_to_first_token_seconds_sum", base, n * 7.5)
    o.add(prefix + "time_to_first_token_seconds_count", base, ttft[-1])
    e2e = [n, 3 * n, 6 * n, 9 * n + n % 2, 11 * n + n % 2, 12 * n + n % 2]
    for le, c in zip(E2E_LE, e2e):
        o.add(prefix + "e2e_request_latency_seconds_bucket", base + [("le", le)], c)


def render(target, n):
    """The exposition text target (0..3) serves at its n-th scrape."""
    o = _Out()
    if target == 0:
        _info(o, W1, "train-multi", "Training", "Train", "p1", "d1", "pool-a", "Running", 3, 3 * 150754820096)
        _pod(o, n, W1, "p1", "train-0", "node-0", "pool-a", restart_at=6)
        _gpu(o, n, "p1", "train-0", "node-0", 0, (n * 7) % 101, 1000 + (n * 37) % 500)
        _gpu(o, n, "p1", "train-0", "node-0", 1, 0, 512)
    elif target == 1:
        _pod(o, n, W1, "p1", "train-1", "node-1", "pool-a", cpu_req=1 if n < 5 else 3)
        _gpu(o, n, "p1", "train-1", "node-1", 0, (n * 11 + 5) % 101, 2000 + (n * 13) % 300)
        _info(o, W2, "nim-serve", "Inference", "Deploy", "p2", "d1", "pool-b", "Running", 1, 150754820096)
        _pod(o, n, W2, "p2", "nim-0", "node-1", "pool-b", running=n >= 4)
        _gpu(o, n, "p2", "nim-0", "node-1", 1, 40 + n % 7, 30000 + n * 4, nvlink=True)
        _nim(o, n, "p2", "nim-0")
    elif target == 2:
        _info(o, W3, "vllm-chat", "Inference", "Deploy", "p2", "d2", "pool-b", "Running", 1, 0)
        _info(o, W4, "notebook", "Workspace", "Build", "p1", "d2", "pool-a", "Running", 0.5, 75377410048)
        _pod(o, n, W4, "p1", "nb-0", "node-2", "pool-a", cpu_req=0.5)
        _gpu(o, n, "p1", "nb-0", "node-2", 3, 0, 100)
        if n <= W6_LAST:
            _info(o, W6, "short-job", "Training", "Train", "p1", "d2", "pool-a", "Running", 1, 150754820096)
            _pod(o, n, W6, "p1", "short-0", "node-2", "pool-a")
            _gpu(o, n, "p1", "short-0", "node-2", 5, 90 - n, 7000 + n)
    else:
        _pod(o, n, W3, "p2", "vllm-0", "node-3", "pool-b")
        _gpu(o, n, "p2", "vllm-0", "node-3", 0, 60 + n % 9, 40000 + n * 2, nvlink=True)
        _nim(o, n, "p2", "vllm-0", prefix="vllm:")
        _info(o, W5, "pend-job", "Training", "Train", "p1", "d1", "pool-a", "Pending", 0, 0)
        _pod(o, n, W5, "p1", "pend-0", "", "pool-a", running=None)
    return ("\n".join(o.lines) + "\n").encode()


def _series(target, n):
    return set(line.rpartition(" ")[0] for line in render(target, n).decode().splitlines())


def samples(target, n):
    """(samples, stale markers) the scraper stores from target's scrapes 1..n: every series served
    at each scrape, and a stale marker for each series served at a scrape and gone at the next."""
    total = markers = 0
    for k in range(1, n + 1):
        cur = _series(target, k)
        total += len(cur)
        if k > 1:
            markers += len(_series(target, k - 1) - cur)
    return total + markers, markers


def series_total(target, n):
    """How many distinct series target served in scrapes 1..n."""
    return len(set().union(*(_series(target, k) for k in range(1, n + 1))))


def start_targets(count=TARGETS):
    """count exporters on free loopback ports: [(ThreadingHTTPServer, state)]; state["n"] is the
    number of scrapes served, state["t"] the time.time() the last one was served at.  Stop each
    with server.shutdown()."""
    out = []
    for t in range(count):
        state = {"n": 0, "t": 0.0, "lock": threading.Lock()}

        class H(BaseHTTPRequestHandler):
            def do_GET(self, t=t, state=state):
                with state["lock"]:
                    state["n"] += 1
                    body = render(t, state["n"])
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                state["t"] = time.time()

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        out.append((srv, state))
    return out
