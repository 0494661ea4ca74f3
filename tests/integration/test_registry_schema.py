"""test_registry_schema.py: the workload registry's JSON bodies conform to the Run:ai spec.

Runs $STRATA_BUILD/tests/test_registry with REGISTRY_FIXTURE_DIR set, so its rendering tests
write every body they check (a full workload, a minimal one, the list, counts, endpoints,
elements), then validates each against the response schema of its operation with
tests/lib/spec_schema.py.  A fixture that is missing counts as a failure, so the test cannot
pass without checking anything."""
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

FIXTURES = [
    ("get_workload", "/api/v1/workloads/{workloadId}"),
    ("get_minimal", "/api/v1/workloads/{workloadId}"),
    ("get_deleted", "/api/v1/workloads/{workloadId}"),
    ("get_pending", "/api/v1/workloads/{workloadId}"),
    ("get_requested_pods", "/api/v1/workloads/{workloadId}"),
    ("list_workloads", "/api/v1/workloads"),
    ("list_paged", "/api/v1/workloads"),
    ("count_workloads", "/api/v1/workloads/count"),
    ("endpoints", "/api/v1/workloads/{workloadId}/endpoints"),
    ("elements", "/api/v1/workloads/{workloadId}/elements"),
    ("elements_count", "/api/v1/workloads/{workloadId}/elements/count"),
]

build = os.environ.get("STRATA_BUILD", "build")
binary = os.path.join(ROOT, build, "tests", "test_registry") if not os.path.isabs(build) \
    else os.path.join(build, "tests", "test_registry")
spec = Spec.load("workloads")
ok_all = True
print("1..%d" % (len(FIXTURES) + 1))  # one check per fixture, one broken body
with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, REGISTRY_FIXTURE_DIR=d)
    run = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if run.returncode != 0:
        print("not ok - test_registry wrote its fixtures (exit %d)" % run.returncode)
        print(run.stdout.decode(errors="replace"))
        sys.exit(1)
    for name, path in FIXTURES:
        f = os.path.join(d, name + ".json")
        try:
            with open(f, encoding="utf-8") as fh:
                body = json.load(fh)
            spec.validate("get", path, 200, body)
            print("ok - %s matches GET %s 200" % (name, path))
        except (OSError, ValueError, jsonschema.ValidationError) as e:
            msg = getattr(e, "message", str(e))
            where = list(getattr(e, "absolute_path", []))
            print("not ok - %s matches GET %s 200: %s at %s" % (name, path, msg, where))
            ok_all = False
    # A body the schema must reject, so a vacuous validator would show up here.
    with open(os.path.join(d, "get_workload.json"), encoding="utf-8") as fh:
        broken = json.load(fh)
    broken["runningPods"] = "1"
    del broken["phase"]
    try:
        spec.validate("get", "/api/v1/workloads/{workloadId}", 200, broken)
        print("not ok - a broken workload body is rejected")
        ok_all = False
    except jsonschema.ValidationError:
        print("ok - a broken workload body is rejected")
sys.exit(0 if ok_all else 1)
