"""Request validation against the contract, for every HTTP method in
openapi.yaml: requests built from each operation's example and request
schema must pass; a missing required member, a wrong type and an unknown
member must each be refused with 400 InvalidRequest naming the JSON path.
Then the contract's own enum/const/minimum cases."""
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

UNKNOWN = "zzNotInTheContract"


def schema_type(s):
    s = harness.resolve(s)
    if "const" in s:
        return "const"
    if "oneOf" in s or "anyOf" in s or not s.get("type"):
        return "any"
    t = s["type"]
    if isinstance(t, list):
        return "any" if len([x for x in t if x != "null"]) != 1 else [x for x in t if x != "null"][0]
    return t


# String members whose handler accepts only certain values beyond the
# schema (a closed list the contract leaves as a free string).
KNOWN_GOOD = {"status": "finished"}


def sample(s, name=None):
    """A valid value for schema s with every optional member filled in."""
    s = harness.resolve(s)
    t = schema_type(s)
    if t == "const":
        return copy.deepcopy(s["const"])
    if t == "any":
        return None
    if t == "string":
        return s["enum"][0] if "enum" in s else KNOWN_GOOD.get(name, "x1")
    if t == "integer":
        return int(s.get("minimum", 0))
    if t == "number":
        return float(s.get("minimum", 0))
    if t == "boolean":
        return False
    if t == "array":
        return []
    if t == "object":
        return {k: sample(v, k) for k, v in s.get("properties", {}).items()}
    raise AssertionError("unhandled schema %r" % s)


def minimal(s, value):
    """value with only the required members, recursively."""
    s = harness.resolve(s)
    if schema_type(s) != "object" or not isinstance(value, dict) or not s.get("properties"):
        return copy.deepcopy(value)
    req = set(s.get("required", []))
    return {k: minimal(s["properties"][k], v) for k, v in value.items() if k in req}


WRONG = {"string": 12345, "integer": "12", "number": "1.5", "boolean": "true",
         "object": "not-an-object", "array": {"not": "an array"}}


def walk_objects(s, value, path):
    """Yield (schema, value, path) for every object in value that s describes."""
    s = harness.resolve(s)
    if schema_type(s) != "object" or not isinstance(value, dict):
        return
    yield s, value, path
    for k, sub in s.get("properties", {}).items():
        if k in value:
            yield from walk_objects(sub, value[k], path + [k])


def set_at(doc, path, fn):
    doc = copy.deepcopy(doc)
    node = doc
    for k in path[:-1]:
        node = node[k]
    fn(node, path[-1])
    return doc


def jpath(path):
    return "$.params" + "".join("." + p for p in path)


def cases_missing(schema, full):
    for s, v, path in walk_objects(schema, full, []):
        for r in s.get("required", []):
            yield jpath(path + [r]), set_at(full, path + [r], lambda n, k: n.pop(k)), \
                'required property "%s" is missing' % r


def cases_wrong_type(schema, full):
    for s, v, path in walk_objects(schema, full, []):
        for k, sub in s.get("properties", {}).items():
            t = schema_type(sub)
            if t == "any" or k not in v:
                continue
            bad = "definitely-not-%r" % (sub["const"],) if t == "const" else WRONG[t]

            def put(n, key, bad=bad):
                n[key] = bad
            yield jpath(path + [k]), set_at(full, path + [k], put), \
                ("must be " if t == "const" else "expected %s" % t)


def cases_unknown(schema, full):
    """(path, body, allowed?) for an extra member in every object."""
    for s, v, path in walk_objects(schema, full, []):
        allowed = s.get("additionalProperties", True) is not False
        target = path + [UNKNOWN]
        body = copy.deepcopy(full)
        node = body
        for k in path:
            node = node[k]
        node[UNKNOWN] = 1
        yield jpath(target), body, allowed


def cases_minimum(schema, full):
    for s, v, path in walk_objects(schema, full, []):
        for k, sub in s.get("properties", {}).items():
            sub = harness.resolve(sub)
            if schema_type(sub) == "integer" and "minimum" in sub and k in v:
                lo = int(sub["minimum"])
                yield jpath(path + [k]), set_at(full, path + [k], lambda n, key, lo=lo: n.__setitem__(key, lo - 1)), False
                yield jpath(path + [k]), set_at(full, path + [k], lambda n, key, lo=lo: n.__setitem__(key, lo)), True
                yield jpath(path + [k]), set_at(full, path + [k], lambda n, key, lo=lo: n.__setitem__(key, lo + 0.5)), False


DEPLOY_WF = """root:
  task: { id: build, output: { ok: true } }
"""


class Validation(harness.ServerTestCase):
    # open mode: scopes never interfere here; `deploy` (the contract
    # examples' workflow) exists, so example launches really start runs
    CONFIG = "listen: 127.0.0.1:0\nworkflows:\n  deploy: { file: workflows/deploy.yaml }\n"
    FILES = {"workflows/deploy.yaml": DEPLOY_WF}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.methods = harness.http_methods()
        assert len(cls.methods) >= 15, "contract parsing found too few methods"

    def call(self, method, params, form):
        if form == "path":
            return self.server.rpc(method, params)
        return self.server.rpc_frame({"id": "v", "method": method, "params": params})

    def assertPassesValidation(self, m, status, doc):
        """Valid requests reach the handler: success, a handler error
        (RunNotFound, ...), or the placeholder of a STUBBED method."""
        self.assertPassedValidation(status, doc, m["name"])

    def test_examples_minimal_and_full_requests_pass(self):
        for m in self.methods:
            full = sample(m["schema"])
            variants = {"example": m["example"], "minimal": minimal(m["schema"], m["example"]),
                        "full": full, "full-minimal": minimal(m["schema"], full)}
            for label, params in variants.items():
                for form in ("path", "frame"):
                    with self.subTest(method=m["name"], variant=label, form=form, params=params):
                        status, _, doc = self.call(m["name"], params, form)
                        self.assertPassesValidation(m, status, doc)

    def test_missing_required_member(self):
        n = 0
        for m in self.methods:
            for path, body, phrase in cases_missing(m["schema"], sample(m["schema"])):
                for form in ("path", "frame"):
                    with self.subTest(method=m["name"], path=path, form=form):
                        status, _, doc = self.call(m["name"], body, form)
                        err = self.assertError(status, doc, "InvalidRequest", path=path)
                        self.assertIn(phrase, err["message"])
                n += 1
        self.assertGreaterEqual(n, 15)

    def test_wrong_type(self):
        n = 0
        for m in self.methods:
            for path, body, phrase in cases_wrong_type(m["schema"], sample(m["schema"])):
                for form in ("path", "frame"):
                    with self.subTest(method=m["name"], path=path, form=form, body=body):
                        status, _, doc = self.call(m["name"], body, form)
                        err = self.assertError(status, doc, "InvalidRequest", path=path)
                        self.assertIn(phrase, err["message"])
                n += 1
        self.assertGreaterEqual(n, 30)

    def test_unknown_member(self):
        refused = 0
        for m in self.methods:
            for path, body, allowed in cases_unknown(m["schema"], sample(m["schema"])):
                for form in ("path", "frame"):
                    with self.subTest(method=m["name"], path=path, form=form, allowed=allowed):
                        status, _, doc = self.call(m["name"], body, form)
                        if allowed:
                            self.assertPassesValidation(m, status, doc)
                        else:
                            err = self.assertError(status, doc, "InvalidRequest", path=path)
                            self.assertIn('unknown property "%s"' % UNKNOWN, err["message"])
                refused += not allowed
        # every method's top-level params object refuses unknown members
        self.assertGreaterEqual(refused, len(self.methods))

    def test_non_object_params(self):
        for m in self.methods:
            with self.subTest(method=m["name"]):
                status, _, doc = self.server.rpc_frame({"method": m["name"], "params": [1]})
                self.assertError(status, doc, "InvalidRequest", path="$.params")

    def test_minimum_bounds_from_the_contract(self):
        n = 0
        for m in self.methods:
            for path, body, ok in cases_minimum(m["schema"], sample(m["schema"])):
                with self.subTest(method=m["name"], path=path, body=body):
                    status, _, doc = self.server.rpc(m["name"], body)
                    if ok:
                        self.assertPassesValidation(m, status, doc)
                    else:
                        self.assertError(status, doc, "InvalidRequest", path=path)
                n += 1
        self.assertGreaterEqual(n, 12)

    # -- the named cases ---------------------------------------------------

    def test_resume_force_must_be_boolean(self):
        for bad in ["yes", 1, 0, None, {}]:
            with self.subTest(force=bad):
                status, _, doc = self.server.rpc("resumeRun", {"runId": "r1", "options": {"force": bad}})
                self.assertError(status, doc, "InvalidRequest", path="$.params.options.force")
        for good in [True, False]:
            status, _, doc = self.server.rpc("resumeRun", {"runId": "r1", "options": {"force": good}})
            self.assertError(status, doc, "RunNotFound", message="Run not found: r1")

    def test_rewind_confirm_must_be_literal_true(self):
        for bad in [False, "true", 1, None]:
            with self.subTest(confirm=bad):
                status, _, doc = self.server.rpc("rewindRun", {"runId": "r1", "frameNo": 1, "confirm": bad})
                err = self.assertError(status, doc, "InvalidRequest", path="$.params.confirm")
                self.assertIn("must be true", err["message"])
        status, _, doc = self.server.rpc("rewindRun", {"runId": "r1", "frameNo": 0, "confirm": True})
        self.assertPassedValidation(status, doc, "rewindRun")
        status, _, doc = self.server.rpc("rewindRun", {"runId": "r1", "frameNo": -1, "confirm": True})
        self.assertError(status, doc, "InvalidRequest", path="$.params.frameNo")
        status, _, doc = self.server.rpc("rewindRun", {"runId": "r1", "frameNo": 2.5, "confirm": True})
        self.assertError(status, doc, "InvalidRequest", path="$.params.frameNo")

    def test_list_runs_limit_minimum(self):
        status, _, doc = self.server.rpc("listRuns", {"filter": {"limit": 0}})
        err = self.assertError(status, doc, "InvalidRequest", path="$.params.filter.limit")
        self.assertIn(">= 1", err["message"])
        status, _, doc = self.server.rpc("listRuns", {"filter": {"limit": 1}})
        self.assertIsInstance(self.assertOk(status, doc), list)
        self.assertLessEqual(len(doc["payload"]), 1)
        status, _, doc = self.server.rpc("listRuns", {"filter": {"limit": "20"}})
        self.assertError(status, doc, "InvalidRequest", path="$.params.filter.limit")

    def test_submit_approval_iteration(self):
        base = {"runId": "r1", "nodeId": "approve", "decision": {"approved": True}}
        status, _, doc = self.server.rpc("submitApproval", dict(base, iteration=-1))
        self.assertError(status, doc, "InvalidRequest", path="$.params.iteration")
        for ok in [0, 3]:
            status, _, doc = self.server.rpc("submitApproval", dict(base, iteration=ok))
            self.assertError(status, doc, "RunNotFound", message="Run not found: r1")
        # iteration is optional (the upstream wrongly required it)
        status, _, doc = self.server.rpc("submitApproval", base)
        self.assertError(status, doc, "RunNotFound", message="Run not found: r1")

    def test_decision_value_accepts_any_json(self):
        for value in [None, 0, -1.5, "text", "", True, False, [], [1, "a", None], {}, {"a": {"b": [1]}}]:
            with self.subTest(value=value):
                status, _, doc = self.server.rpc("submitApproval", {
                    "runId": "r1", "nodeId": "approve", "decision": {"approved": False, "value": value}})
                self.assertError(status, doc, "RunNotFound", message="Run not found: r1")

    def test_decision_needs_approved(self):
        status, _, doc = self.server.rpc("submitApproval", {"runId": "r1", "nodeId": "n", "decision": {"value": 1}})
        self.assertError(status, doc, "InvalidRequest", path="$.params.decision.approved")
        status, _, doc = self.server.rpc("submitApproval", {"runId": "r1", "nodeId": "n", "decision": {"approved": True, "note": 5}})
        self.assertError(status, doc, "InvalidRequest", path="$.params.decision.note")

    def test_signal_payload_accepts_any_json(self):
        for value in [None, 1, "s", [1], {"k": "v"}]:
            with self.subTest(payload=value):
                status, _, doc = self.server.rpc("submitSignal", {"runId": "r1", "correlationKey": "k", "payload": value})
                self.assertError(status, doc, "RunNotFound", message="Run not found: r1")

    def test_open_objects_keep_extra_members(self):
        status, _, doc = self.server.rpc("launchRun", {"workflow": "deploy", "input": {"anything": {"goes": [1, 2]}}})
        run_id = self.assertOk(status, doc)["runId"]
        status, _, doc = self.server.rpc("getRun", {"runId": run_id})
        self.assertEqual(self.assertOk(status, doc)["input"], {"anything": {"goes": [1, 2]}})
        status, _, doc = self.server.rpc("hijackRun", {"runId": run_id, "options": {"free": "form"}})
        self.assertEqual(self.assertOk(status, doc)["status"], "hijack-ready")
        status, _, doc = self.server.rpc("hijackRun", {"runId": "r1", "options": {"free": "form"}})
        self.assertError(status, doc, "RunNotFound", message="Run not found: r1")
        status, _, doc = self.server.rpc("launchRun", {"workflow": "deploy", "options": {"free": "form"}})
        self.assertError(status, doc, "InvalidRequest", path="$.params.options.free")

    def test_duplicate_member_refused(self):
        status, _, body = self.server.request("POST", "/v1/rpc/getRun", b'{"runId":"a","runId":"b"}')
        self.assertError(status, json.loads(body), "InvalidRequest", path="$.params.runId")

    def test_integer_beyond_2_pow_53(self):
        status, _, doc = self.server.rpc("listRuns", {"filter": {"limit": 2 ** 60}})
        self.assertError(status, doc, "InvalidRequest", path="$.params.filter.limit")

    def test_validation_happens_before_the_handler_for_every_method(self):
        # the not-available placeholder is never answered to an invalid request
        for m in self.methods:
            with self.subTest(method=m["name"]):
                status, _, doc = self.server.rpc(m["name"], dict(m["example"], **{UNKNOWN: True}))
                self.assertError(status, doc, "InvalidRequest", path="$.params." + UNKNOWN)


if __name__ == "__main__":
    harness.main()
