"""test_spec_schema.py: the spec-validation harness itself accepts what the Run:ai pages allow
and rejects what they forbid, so later API tests that lean on it cannot pass vacuously."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import jsonschema  # noqa: E402
from spec_schema import Spec  # noqa: E402

results = []
print("1..8")


def check(name, fn, want_valid):
    try:
        fn()
        ok = want_valid
    except jsonschema.ValidationError:
        ok = not want_valid
    print(("ok - " if ok else "not ok - ") + name)
    results.append(ok)


wl = Spec.load("workloads")
rp = Spec.load("reports")
metrics = "/api/v1/workloads/{workloadId}/metrics"
good = {"measurements": [{"type": "GPU_UTILIZATION", "labels": {"gpu": "0"},
                          "values": [{"value": "42.5", "timestamp": "2024-12-20T14:30:00Z"}]}],
        "histogram": None}
check("metrics response with string values validates",
      lambda: wl.validate("get", metrics, 200, good), True)
check("nullable measurement values (207 style) validate",
      lambda: wl.validate("get", metrics, 200,
                          {"measurements": [{"type": "GPU_UTILIZATION", "values": None,
                                             "labels": {"error": "timeout"}}]}), True)
bad = {"measurements": [{"type": "GPU_UTILIZATION", "values": [{"value": 42.5, "timestamp": None}]}]}
check("numeric value where the spec wants a string is rejected",
      lambda: wl.validate("get", metrics, 200, bad), False)
check("missing required measurements is rejected",
      lambda: wl.validate("get", metrics, 200, {"histogram": []}), False)
check("error body validates",
      lambda: wl.validate("get", metrics, 400, {"code": 400, "message": "bad", "details": "x"}), True)
check("error body with code as string is rejected",
      lambda: wl.validate("get", metrics, 400, {"code": "400", "message": "bad"}), False)
check("count response validates",
      lambda: wl.validate("get", "/api/v1/workloads/count", 200, {"count": 3}), True)
try:
    rp.schema("post", "/api/v1/org-unit/reports", 202)
    print("ok - reports page parsed (POST /org-unit/reports 202 documented)")
    results.append(True)
except KeyError as e:
    print(f"not ok - reports page: {e}")
    results.append(False)
sys.exit(0 if all(results) else 1)
