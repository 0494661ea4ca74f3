"""spec_schema.py: validate API responses against the Run:ai OpenAPI pages, read at run time.

The pages in ../shared/spec/ (relative to the repo root) hold one OpenAPI 3.0 document per
operation inside ```json fences.  This module collects them, turns the response schema of an
(method, path, status) into JSON Schema (OpenAPI's `nullable` becomes a "null" type) and
validates a body with python3-jsonschema.  Nothing is copied into the repo, so the tests follow
the spec as it is.

Use from a test:
    from spec_schema import Spec
    spec = Spec.load("workloads")            # or "reports"
    spec.validate("get", "/api/v1/workloads/{workloadId}", 200, body)   # raises on mismatch
or from the shell:
    python3 tests/lib/spec_schema.py workloads get /api/v1/workloads 200 < body.json
"""
import copy
import json
import os
import re
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_DIR = os.environ.get("STRATA_SPEC_DIR", os.path.join(ROOT, "..", "shared", "spec"))
PAGES = {"workloads": "runai-workloads-api.md", "reports": "runai-reports-api.md"}


def _openapi_to_jsonschema(node):
    """Rewrites OpenAPI 3.0 schema keywords into their JSON Schema draft 7 meaning."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items()
           if k not in ("nullable", "example", "discriminator", "xml", "externalDocs",
                        "deprecated", "readOnly", "writeOnly")}
    if node.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
        for comb in ("allOf", "oneOf", "anyOf"):
            if comb in out and "type" not in out:
                out = {"anyOf": [{"type": "null"}, {k: v for k, v in out.items()}]}
                break
        if "$ref" in out:
            out = {"anyOf": [{"type": "null"}, {"$ref": out["$ref"]}]}
    return out


class Spec:
    def __init__(self, docs):
        self.docs = docs  # list of OpenAPI documents, one per operation

    @classmethod
    def load(cls, name):
        path = os.path.join(SPEC_DIR, PAGES.get(name, name))
        with open(path, encoding="utf-8") as f:
            text = f.read()
        docs = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", text, re.S)]
        if not docs:
            raise ValueError(f"no OpenAPI documents found in {path}")
        return cls(docs)

    def operation(self, method, path):
        for d in self.docs:
            op = d.get("paths", {}).get(path, {}).get(method.lower())
            if op is not None:
                return d, op
        raise KeyError(f"{method.upper()} {path} is not in the spec")

    def schema(self, method, path, status, content_type="application/json"):
        doc, op = self.operation(method, path)
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if resp is None:
            raise KeyError(f"{method.upper()} {path} has no response {status} in the spec")
        while "$ref" in resp:
            resp = _resolve(doc, resp["$ref"])
        content = resp.get("content", {})
        media = content.get(content_type) or next(iter(content.values()), None)
        if media is None or "schema" not in media:
            return None, doc
        return media["schema"], doc

    def validate(self, method, path, status, body, content_type="application/json"):
        """Raises jsonschema.ValidationError when body does not match the documented schema."""
        schema, doc = self.schema(method, path, status, content_type)
        if schema is None:
            if body not in (None, b"", ""):
                raise jsonschema.ValidationError(f"{method} {path} {status}: spec documents no body")
            return
        root = _openapi_to_jsonschema(copy.deepcopy({"components": doc.get("components", {})}))
        root.update(_openapi_to_jsonschema(copy.deepcopy(schema)))
        jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker()).validate(body)


def _resolve(doc, ref):
    node = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    spec = Spec.load(argv[1])
    body = json.load(sys.stdin)
    try:
        spec.validate(argv[2], argv[3], int(argv[4]), body)
    except jsonschema.ValidationError as e:
        print(f"INVALID: {e.message} at {list(e.absolute_path)}", file=sys.stderr)
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
