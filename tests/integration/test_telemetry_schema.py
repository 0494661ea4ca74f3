"""test_telemetry_schema.py: every telemetry body the unit tests compute conforms to the spec.

Runs $STRATA_BUILD/tests/test_telemetry with TELEMETRY_FIXTURE_DIR set: each case it checks
writes caseNNN.json, caseNNN.csv (same query, Accept: text/csv) and caseNNN.query.  Then:
  - each JSON body validates against GET /api/v1/workloads/telemetry 200 (TelemetryResponse),
    schema read from ../shared/spec at run time by tests/lib/spec_schema.py;
  - each CSV body says the same as its JSON twin: header = the group keys (plus
    DepartmentName/ProjectName after their ids) then `value`, one row per value in order;
  - a body the schema must reject is rejected (so a vacuous validator shows up).
Too few cases written counts as a failure, so the test cannot pass without checking anything."""
import csv
import glob
import io
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

PATH = "/api/v1/workloads/telemetry"
NAME_COLS = {"DepartmentId": "DepartmentName", "ProjectId": "ProjectName"}
MIN_CASES = 60

build = os.environ.get("STRATA_BUILD", "build")
binary = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build), "tests", "test_telemetry")
spec = Spec.load("workloads")


def csv_matches(body, text):
    """None when the CSV says what the JSON says, else why not."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not text.endswith("\n"):
        return "CSV does not end with a newline"
    values = body["values"]
    keys = [g["key"] for g in values[0]["groups"]] if values else None
    header = rows[0]
    if keys is not None:
        want = []
        for k in keys:
            want.append(k)
            if k in NAME_COLS:
                want.append(NAME_COLS[k])
        want.append("value")
        if header != want:
            return "header %r, want %r" % (header, want)
    if header[-1] != "value":
        return "last column %r, want 'value'" % header[-1]
    if len(rows) - 1 != len(values):
        return "%d rows, want %d" % (len(rows) - 1, len(values))
    for row, v in zip(rows[1:], values):
        want = []
        for g in v["groups"]:
            want.append(g["value"])
            if g["key"] in NAME_COLS:
                want.append(g.get("name", ""))
        want.append(v["value"])
        if row != want:
            return "row %r, want %r" % (row, want)
    return None


ok_all = True
print("1..7")
with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, TELEMETRY_FIXTURE_DIR=d)
    run = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if run.returncode != 0:
        print("not ok - test_telemetry wrote its fixtures (exit %d)" % run.returncode)
        print(run.stdout.decode(errors="replace"))
        sys.exit(1)
    cases = sorted(glob.glob(os.path.join(d, "case*.json")))
    if len(cases) < MIN_CASES:
        print("not ok - test_telemetry wrote %d cases, want at least %d" % (len(cases), MIN_CASES))
        sys.exit(1)
    print("ok - test_telemetry wrote %d cases" % len(cases))
    bad_json, bad_csv, types = [], [], set()
    first = None
    for f in cases:
        stem = f[:-len(".json")]
        with open(stem + ".query", encoding="utf-8") as fh:
            query = fh.read()
        try:
            with open(f, encoding="utf-8") as fh:
                body = json.load(fh)
            spec.validate("get", PATH, 200, body)
            types.add(body["type"])
            first = first or body
        except (OSError, ValueError, jsonschema.ValidationError) as e:
            bad_json.append("%s (%s): %s at %s" % (os.path.basename(f), query, getattr(e, "message", e),
                                                  list(getattr(e, "absolute_path", []))))
            continue
        try:
            with open(stem + ".csv", encoding="utf-8", newline="") as fh:
                why = csv_matches(body, fh.read())
        except OSError as e:
            why = str(e)
        if why:
            bad_csv.append("%s (%s): %s" % (os.path.basename(f), query, why))
    if bad_json:
        ok_all = False
        print("not ok - every JSON body matches GET %s 200" % PATH)
        for b in bad_json:
            print("#   " + b)
    else:
        print("ok - every JSON body (%d) matches GET %s 200" % (len(cases), PATH))
    want_types = {"WORKLOADS_COUNT", "GPU_ALLOCATION", "PENDING_TIME_DISTRIBUTION", "IDLE_ALLOCATED_GPUS"}
    if types != want_types:
        ok_all = False
        print("not ok - bodies of every telemetry type were checked (got %s)" % sorted(types))
    else:
        print("ok - bodies of every telemetry type were checked")
    if bad_csv:
        ok_all = False
        print("not ok - every CSV body says what its JSON twin says")
        for b in bad_csv:
            print("#   " + b)
    else:
        print("ok - every CSV body says what its JSON twin says")
    # Bodies the schema must reject: a number instead of a string, a missing timestamp.
    for what, broken in (("a numeric value", dict(first, values=[{"value": 3}])),
                         ("a missing timestamp", {k: v for k, v in first.items() if k != "timestamp"}),
                         ("three groups", dict(first, values=[{"value": "1", "groups": [
                             {"key": "a", "value": "1"}, {"key": "b", "value": "2"},
                             {"key": "c", "value": "3"}]}]))):
        try:
            spec.validate("get", PATH, 200, broken)
            print("not ok - a body with %s is rejected" % what)
            ok_all = False
        except jsonschema.ValidationError:
            print("ok - a body with %s is rejected" % what)
sys.exit(0 if ok_all else 1)
