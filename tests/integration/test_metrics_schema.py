"""test_metrics_schema.py: the metrics query layer's JSON bodies conform to the Run:ai spec.

Runs $STRATA_BUILD/tests/test_metrics_query with STRATA_GOLDEN_DIR set, so its golden cases
write every body they check (per-GPU measurements, counters, histograms and percentiles, pod
requests and counts, native resolution, a partial answer), then validates each against the
MetricsCompositeResponse schema of GET /api/v1/workloads/{workloadId}/metrics (200, or 207
for the partial one) with tests/lib/spec_schema.py.  A body that is missing counts as a
failure, so the test cannot pass without checking anything."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import jsonschema  # noqa: E402
from spec_schema import Spec  # noqa: E402

PATH = "/api/v1/workloads/{workloadId}/metrics"
GOLDEN = [("gpu", 200), ("counters", 200), ("histogram", 200), ("pods", 200), ("native", 200),
          ("native_fractional", 200),
          ("partial", 207)]

build = os.environ.get("STRATA_BUILD", "build")
binary = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build),
                      "tests", "test_metrics_query")
spec = Spec.load("workloads")
ok_all = True
print("1..%d" % (len(GOLDEN) + 3))  # one check per golden body, three broken bodies
with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, STRATA_GOLDEN_DIR=d)
    run = subprocess.run([binary], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    if run.returncode != 0:
        print("not ok - test_metrics_query wrote its golden bodies (exit %d)" % run.returncode)
        print(run.stdout.decode(errors="replace"))
        sys.exit(1)
    bodies = {}
    for name, status in GOLDEN:
        f = os.path.join(d, name + ".json")
        try:
            with open(f, encoding="utf-8") as fh:
                bodies[name] = json.load(fh)
            spec.validate("get", PATH, status, bodies[name])
            print("ok - %s matches GET %s %d" % (name, PATH, status))
        except (OSError, ValueError, jsonschema.ValidationError) as e:
            msg = getattr(e, "message", str(e))
            where = list(getattr(e, "absolute_path", []))
            print("not ok - %s matches GET %s %d: %s at %s" % (name, PATH, status, msg, where))
            ok_all = False
    # Bodies the schema must reject, so a vacuous validator would show up here.
    broken = [
        ("a number as a value", lambda b: b["measurements"][0]["values"][0].__setitem__("value", 30)),
        ("a measurement without values", lambda b: b["measurements"][0].pop("values")),
        ("no measurements", lambda b: b.pop("measurements")),
    ]
    for what, mutate in broken:
        body = json.loads(json.dumps(bodies.get("gpu", {"measurements": []})))
        try:
            mutate(body)
            spec.validate("get", PATH, 200, body)
            print("not ok - a body with %s is rejected" % what)
            ok_all = False
        except jsonschema.ValidationError:
            print("ok - a body with %s is rejected" % what)
sys.exit(0 if ok_all else 1)
