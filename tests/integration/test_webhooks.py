"""POST /webhooks/{workflow} through the real binary: HMAC-SHA256 signatures
(default and custom header/prefix, wrong, missing, malformed), 404 for an
unknown workflow or one without a webhook, 400 for a non-JSON body, 413 past
maxBodyBytes, signal delivery to the waiting runs whose correlation matches
(the run then completes), runIdPath targeting one run, and starting a run
(inputPath) when no run was waiting. Every error, whichever layer answers
it, is the upstream's webhook envelope {ok: false, error: {...}} with a v1
code.

Redeliveries (class Redeliveries, its own server): a signed delivery with a
delivery id is answered once; a repeat gets the first answer byte for byte
and starts or signals nothing (checked with listRuns and the runs' nodes),
across a restart and a crash too; different ids act separately; the header
is per webhook ("" turns it off; unsigned deliveries are never recorded);
malformed ids are 400 with a path. A lost answer (the write refused by a
trigger, as after a crash between acting and recording) is recovered from
the run's idempotency key and the signals' delivery key, also past the
retention window. Signatures are computed with hmac and hashlib. Waits are
bounded polling."""
import hashlib
import hmac
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402

WAIT_S = 20.0
POLL_S = 0.05
OP = "op-token"
SECRET = "s3cret-webhook-key"
MAX_BODY = 8192


def sig_node(id, name, **kw):
    return {"signal": dict(id=id, name=name, **kw)}


def task(id, output):
    return {"task": {"id": id, "output": output}}


WORKFLOWS = {
    "hooked": {"sequence": [sig_node("review", "github.comment.created", correlationKey="${input.issue}"),
                            task("record", {"recorded": True})]},
    "plain": task("only", {"x": 1}),
    "custom": {"sequence": [sig_node("wait", "deploy.done", correlationKey="${input.env}"),
                            task("after", {"ok": True})]},
    "unsigned": task("only", {"x": 1}),
    "nokey": {"sequence": [sig_node("wait", "ping"), task("after", {"ok": True})]},
}

CONFIG = """listen: 127.0.0.1:0
maxBodyBytes: %d
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
workflows:
  hooked:
    file: wf/hooked.yaml
    webhook:
      secret: "%s"
      signal: { name: github.comment.created, correlationIdPath: issue.number, payloadPath: comment }
      run: { enabled: true, inputPath: payload }
  plain:
    file: wf/plain.yaml
  custom:
    file: wf/custom.yaml
    webhook:
      secret: "%s"
      signatureHeader: X-Anvil-Signature
      signaturePrefix: "v1:"
      signal: { name: deploy.done, correlationIdPath: env, runIdPath: target.run }
  unsigned:
    file: wf/unsigned.yaml
    webhook:
      run: { enabled: true }
  nokey:
    file: wf/nokey.yaml
    webhook:
      secret: "%s"
      signal: { name: ping }
""" % (MAX_BODY, SECRET, SECRET, SECRET)

FILES = {"wf/%s.yaml" % k: yaml.safe_dump({"name": k, "root": root}, sort_keys=False)
         for k, root in WORKFLOWS.items()}


def sign(body, secret=SECRET, prefix="sha256="):
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(CONFIG, FILES).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    # -- helpers -------------------------------------------------------------

    def call(self, method, params):
        status, _, doc = self.server.rpc(method, params, token=OP)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc.get("ok"), doc)
        return doc["payload"] if "payload" in doc else doc.get("result", doc)

    def launch(self, workflow, input):
        return self.call("launchRun", {"workflow": workflow, "input": input})["runId"]

    def get(self, run_id):
        return self.call("getRun", {"runId": run_id})

    def wait_run(self, run_id, statuses=("finished", "failed", "cancelled")):
        if isinstance(statuses, str):
            statuses = (statuses,)
        deadline = time.monotonic() + WAIT_S
        while True:
            v = self.get(run_id)
            if v["status"] in statuses:
                return v
            if time.monotonic() > deadline:
                self.fail("run %s stayed %s (wanted %s)" % (run_id, v["status"], statuses))
            time.sleep(POLL_S)

    def hook(self, workflow, doc=None, raw=None, headers=None, signature=True, **signkw):
        body = raw if raw is not None else json.dumps(doc).encode()
        hdrs = dict(headers or {})
        if signature:
            hdrs["X-Hub-Signature-256"] = sign(body, **signkw)
        status, h, data = self.server.request("POST", "/webhooks/" + workflow, body, hdrs)
        try:
            parsed = json.loads(data.decode())
        except ValueError:
            self.fail("non-JSON webhook reply %d: %r" % (status, data))
        for k, v in harness.STANDARD_HEADERS.items():
            self.assertEqual(h.get(k), v, "header %s on %d" % (k, status))
        if status == 200:
            self.assertReplyShape(parsed)
        return status, parsed

    def assertReplyShape(self, doc):
        """The members openapi.yaml's WebhookReply declares, no others."""
        schema = harness.contract()["components"]["schemas"]["WebhookReply"]
        self.assertLessEqual(set(doc), set(schema["properties"]), doc)
        self.assertLessEqual(set(schema["required"]), set(doc), doc)
        item = schema["properties"]["delivered"]["items"]
        for d in doc["delivered"]:
            self.assertEqual(set(d), set(item["required"]), d)

    def assertErr(self, status, doc, want_status, code):
        """The webhook error envelope: exactly {ok: false, error} (no RPC
        frame members), the error a v1 error object."""
        self.assertEqual(status, want_status, doc)
        schema = harness.contract()["components"]["schemas"]["WebhookError"]
        self.assertEqual(set(doc), set(schema["required"]), doc)
        self.assertIs(doc["ok"], False, doc)
        err = doc["error"]
        self.assertEqual(err["code"], code, doc)
        self.assertEqual(err["version"], "v1", doc)
        self.assertEqual(err["legacyCode"], harness.contract()["x-smithers-errors"][code]["legacyCode"], doc)
        self.assertEqual(status, harness.error_status(code) if status not in (405, 408) else status)
        self.assertIsInstance(err["message"], str, doc)
        return err

    def raw_hook(self, method, path, body=None, headers=None):
        status, h, data = self.server.request(method, path, body, headers)
        for k, v in harness.STANDARD_HEADERS.items():
            self.assertEqual(h.get(k), v, "header %s on %d" % (k, status))
        return status, h, json.loads(data.decode())

    # -- signatures ----------------------------------------------------------

    def test_good_signature_delivers_to_the_waiting_run(self):
        run_id = self.launch("hooked", {"issue": "4242"})
        self.wait_run(run_id, "waiting-event")
        other = self.launch("hooked", {"issue": "999"})
        self.wait_run(other, "waiting-event")
        status, doc = self.hook("hooked", {"issue": {"number": 4242}, "comment": {"body": "LGTM"}})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["ok"], True)
        self.assertEqual(doc["workflow"], "hooked")
        self.assertEqual(doc["verified"], True)
        self.assertNotIn("startedRunId", doc)
        self.assertEqual(len(doc["delivered"]), 1, doc)
        d = doc["delivered"][0]
        self.assertEqual(d["runId"], run_id)
        self.assertEqual(d["signalName"], "github.comment.created")
        self.assertEqual(d["correlationId"], "4242")
        self.assertEqual(d["seq"], 1)
        self.assertIsInstance(d["receivedAtMs"], int)
        v = self.wait_run(run_id)
        self.assertEqual(v["status"], "finished", v)
        out = self.call("getNodeOutput", {"runId": run_id, "nodeId": "review"})
        self.assertEqual(out["row"], {"body": "LGTM"})
        self.assertEqual(self.get(other)["status"], "waiting-event", "the other issue's run still waits")
        self.call("cancelRun", {"runId": other})

    def test_delivers_to_every_matching_run(self):
        a = self.launch("hooked", {"issue": "77"})
        b = self.launch("hooked", {"issue": "77"})
        for r in (a, b):
            self.wait_run(r, "waiting-event")
        status, doc = self.hook("hooked", {"issue": {"number": "77"}, "comment": {"n": 1}})
        self.assertEqual(status, 200, doc)
        self.assertEqual(sorted(d["runId"] for d in doc["delivered"]), sorted([a, b]))
        for r in (a, b):
            self.assertEqual(self.wait_run(r)["status"], "finished")

    def test_wrong_signature_is_401(self):
        body = json.dumps({"issue": {"number": 1}}).encode()
        for bad in (sign(body, secret="other"), sign(body + b" "), "sha256=", "sha256=zz",
                    sign(body).replace("sha256=", "sha1="), sign(body)[:-1]):
            status, doc = self.hook("hooked", raw=body, signature=False,
                                    headers={"X-Hub-Signature-256": bad})
            self.assertErr(status, doc, 401, "Unauthorized")

    def test_uppercase_hex_is_accepted(self):
        body = json.dumps({"issue": {"number": 5}, "payload": {"issue": "5"}}).encode()
        s = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().upper()
        status, doc = self.hook("hooked", raw=body, signature=False, headers={"X-Hub-Signature-256": s})
        self.assertEqual(status, 200, doc)
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    def test_missing_signature_is_401(self):
        status, doc = self.hook("hooked", {"issue": {"number": 1}}, signature=False)
        self.assertErr(status, doc, 401, "Unauthorized")
        self.assertIn("x-hub-signature-256", doc["error"]["message"])

    def test_signature_is_checked_before_the_body(self):
        status, doc = self.hook("hooked", raw=b"not json", signature=False,
                                headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
        self.assertErr(status, doc, 401, "Unauthorized")

    def test_bearer_token_is_not_a_signature(self):
        status, doc = self.hook("hooked", {"issue": {"number": 1}}, signature=False,
                                headers={"Authorization": "Bearer " + OP})
        self.assertErr(status, doc, 401, "Unauthorized")

    # -- custom header / prefix, runIdPath -----------------------------------

    def test_custom_header_prefix_and_run_id_path(self):
        a = self.launch("custom", {"env": "prod"})
        b = self.launch("custom", {"env": "prod"})
        for r in (a, b):
            self.wait_run(r, "waiting-event")
        body = json.dumps({"env": "prod", "target": {"run": a}}).encode()
        # the default header does not count for this workflow
        status, doc = self.hook("custom", raw=body)
        self.assertErr(status, doc, 401, "Unauthorized")
        # right header, default prefix: wrong
        status, doc = self.hook("custom", raw=body, signature=False,
                                headers={"X-Anvil-Signature": sign(body)})
        self.assertErr(status, doc, 401, "Unauthorized")
        status, doc = self.hook("custom", raw=body, signature=False,
                                headers={"x-anvil-signature": sign(body, prefix="v1:")})
        self.assertEqual(status, 200, doc)
        self.assertEqual([d["runId"] for d in doc["delivered"]], [a], "runIdPath targets one run")
        self.assertEqual(doc["delivered"][0]["correlationId"], "prod")
        self.assertNotIn("startedRunId", doc, "custom has no run block")
        self.assertEqual(self.wait_run(a)["status"], "finished")
        self.assertEqual(self.get(b)["status"], "waiting-event")
        # runIdPath naming a run of another workflow, or none at all
        plain = self.launch("plain", {})
        for rid in (plain, "run_" + "0" * 32):
            body = json.dumps({"env": "prod", "target": {"run": rid}}).encode()
            status, doc = self.hook("custom", raw=body, signature=False,
                                    headers={"X-Anvil-Signature": sign(body, prefix="v1:")})
            self.assertErr(status, doc, 404, "RunNotFound")
        # without runIdPath in the body: every matching waiting run
        body = json.dumps({"env": "prod"}).encode()
        status, doc = self.hook("custom", raw=body, signature=False,
                                headers={"X-Anvil-Signature": sign(body, prefix="v1:")})
        self.assertEqual(status, 200, doc)
        self.assertEqual([d["runId"] for d in doc["delivered"]], [b])
        self.assertEqual(self.wait_run(b)["status"], "finished")

    def test_signal_without_correlation_id_path(self):
        # no correlation id: nodes without a correlationKey take it
        run_id = self.launch("nokey", {})
        self.wait_run(run_id, "waiting-event")
        status, doc = self.hook("nokey", {"anything": 1})
        self.assertEqual(status, 200, doc)
        self.assertEqual([(d["runId"], d["correlationId"]) for d in doc["delivered"]], [(run_id, None)])
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    # -- routing and bodies --------------------------------------------------

    def test_unknown_workflow_is_404(self):
        status, doc = self.hook("nope", {"a": 1})
        self.assertErr(status, doc, 404, "NotFound")

    def test_workflow_without_webhook_is_404(self):
        status, doc = self.hook("plain", {"a": 1})
        self.assertErr(status, doc, 404, "NotFound")

    def test_get_is_405(self):
        status, h, doc = self.raw_hook("GET", "/webhooks/hooked")
        self.assertErr(status, doc, 405, "NotFound")
        self.assertEqual(h.get("allow"), "POST")

    def test_malformed_webhook_paths_are_404_in_the_envelope(self):
        for path in ("/webhooks/", "/webhooks/hooked/extra"):
            status, _, doc = self.raw_hook("POST", path, b"{}")
            self.assertErr(status, doc, 404, "NotFound")
        # other routes keep the upstream's plain {"error": {...}} (test_http_surface)
        status, _, doc = self.raw_hook("POST", "/webhookz/hooked", b"{}")
        self.assertEqual(status, 404)
        self.assertEqual(set(doc), {"error"}, doc)

    def test_non_json_body_is_400(self):
        for raw in (b"not json", b"{\"a\":1} trailing", b""):
            status, doc = self.hook("hooked", raw=raw)
            self.assertErr(status, doc, 400, "InvalidRequest")

    def test_oversize_body_is_413(self):
        body = json.dumps({"pad": "x" * (MAX_BODY + 10)}).encode()
        status, doc = self.hook("hooked", raw=body)
        err = self.assertErr(status, doc, 413, "PayloadTooLarge")
        self.assertEqual(err["maxBytes"], MAX_BODY)

    def test_too_deep_body_is_400_with_the_bound(self):
        status, doc = self.hook("hooked", raw=b"[" * 40 + b"]" * 40)
        self.assertErr(status, doc, 400, "InvalidRequest")
        self.assertIn("32", doc["error"]["message"])

    # -- starting runs -------------------------------------------------------

    def test_no_waiting_run_starts_one(self):
        body = {"issue": {"number": 31337}, "comment": {"body": "hi"}, "payload": {"issue": "31337"}}
        status, doc = self.hook("hooked", body)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["delivered"], [])
        run_id = doc["startedRunId"]
        v = self.wait_run(run_id, "waiting-event")
        self.assertEqual(v["triggeredBy"], "webhook:hooked")
        self.assertEqual(v["input"], {"issue": "31337"})
        self.assertEqual(v["workflowKey"], "hooked")
        # the next delivery for that issue reaches the run it started
        status, doc = self.hook("hooked", body)
        self.assertEqual([d["runId"] for d in doc["delivered"]], [run_id])
        self.assertNotIn("startedRunId", doc)
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    def test_start_needs_an_object_input(self):
        status, doc = self.hook("hooked", {"issue": {"number": 8080}, "payload": [1, 2]})
        self.assertErr(status, doc, 400, "InvalidInput")
        status, doc = self.hook("hooked", {"issue": {"number": 8080}})
        self.assertErr(status, doc, 400, "InvalidInput")

    def test_webhook_without_secret_is_unverified(self):
        status, doc = self.hook("unsigned", {"k": "v"}, signature=False)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["verified"], False)
        self.assertEqual(doc["delivered"], [])
        v = self.wait_run(doc["startedRunId"])
        self.assertEqual(v["status"], "finished")
        self.assertEqual(v["input"], {"k": "v"})
        self.assertEqual(v["triggeredBy"], "webhook:unsigned")


REDELIVERY_WORKFLOWS = {
    # a run waits for the issue's comment; a delivery for an issue nobody
    # waits for starts one
    "gh": {"sequence": [sig_node("review", "github.comment.created", correlationKey="${input.issue}"),
                        task("record", {"recorded": True})]},
    # two waits for the same signal: a second delivery of one signal would
    # move the run past both
    "twosig": {"sequence": [sig_node("first", "ping"), sig_node("second", "ping"),
                            task("done", {"ok": True})]},
    "custom": task("only", {"x": 1}),
    "off": task("only", {"x": 1}),
    "open": task("only", {"x": 1}),
}

REDELIVERY_CONFIG = """listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
workflows:
  gh:
    file: wf/gh.yaml
    webhook:
      secret: "%(s)s"
      signal: { name: github.comment.created, correlationIdPath: issue.number }
      run: { enabled: true, inputPath: payload }
  twosig:
    file: wf/twosig.yaml
    webhook:
      secret: "%(s)s"
      signal: { name: ping }
  custom:
    file: wf/custom.yaml
    webhook:
      secret: "%(s)s"
      deliveryIdHeader: X-Request-Id
      run: {}
  off:
    file: wf/off.yaml
    webhook:
      secret: "%(s)s"
      deliveryIdHeader: ""
      run: {}
  open:
    file: wf/open.yaml
    webhook:
      run: {}
""" % {"s": SECRET}

REDELIVERY_FILES = {"wf/%s.yaml" % k: yaml.safe_dump({"name": k, "root": root}, sort_keys=False)
                    for k, root in REDELIVERY_WORKFLOWS.items()}

GH = "X-GitHub-Delivery"
DAY_MS = 24 * 3600 * 1000


class Redeliveries(Webhooks.__bases__[0]):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(REDELIVERY_CONFIG, REDELIVERY_FILES).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.cleanup()

    # the helpers of Webhooks, without its tests
    call = Webhooks.call
    launch = Webhooks.launch
    get = Webhooks.get
    wait_run = Webhooks.wait_run
    assertErr = Webhooks.assertErr
    assertReplyShape = Webhooks.assertReplyShape

    def send(self, workflow, doc, delivery=None, header=GH, headers=None, signed=True):
        """(status, headers, raw body bytes, parsed body)."""
        body = json.dumps(doc).encode()
        hdrs = dict(headers or {})
        if signed:
            hdrs["X-Hub-Signature-256"] = sign(body)
        if delivery is not None:
            hdrs[header] = delivery
        status, h, data = self.server.request("POST", "/webhooks/" + workflow, body, hdrs)
        doc = json.loads(data.decode())
        if status == 200:
            self.assertReplyShape(doc)
        return status, h, data, doc

    def runs_of(self, workflow):
        runs = self.call("listRuns", {"filter": {"limit": 1000}})
        return sorted(r["runId"] for r in runs if r.get("workflowKey") == workflow)

    def node_states(self, run_id):
        return {n["nodeId"]: n["state"] for n in self.get(run_id)["nodes"]}

    def issue(self, n):
        return {"issue": {"number": n}, "comment": {"body": "hi"}, "payload": {"issue": str(n)}}

    # -- runs ----------------------------------------------------------------

    def test_redelivery_answers_the_first_result_and_starts_nothing(self):
        before = self.runs_of("gh")
        status, h, first, doc = self.send("gh", self.issue(7001), "guid-7001")
        self.assertEqual(status, 200, doc)
        self.assertNotIn("idempotent-replayed", h)
        run_id = doc["startedRunId"]
        self.assertEqual(self.runs_of("gh"), sorted(before + [run_id]))
        for _ in range(2):
            status, h, again, _ = self.send("gh", self.issue(7001), "guid-7001")
            self.assertEqual(status, 200)
            self.assertEqual(again, first, "the first answer, byte for byte")
            self.assertEqual(h.get("idempotent-replayed"), "true")
            for k, v in harness.STANDARD_HEADERS.items():
                self.assertEqual(h.get(k), v)
        self.assertEqual(self.runs_of("gh"), sorted(before + [run_id]), "no second run")
        self.assertEqual(self.get(run_id)["status"], "waiting-event")
        # the header name is matched case-insensitively
        status, h, again, _ = self.send("gh", self.issue(7001), "guid-7001", header="x-github-delivery")
        self.assertEqual(again, first)
        self.call("cancelRun", {"runId": run_id})

    def test_different_delivery_ids_start_separate_runs(self):
        before = self.runs_of("gh")
        started = []
        for guid in ("guid-a-7002", "guid-b-7002"):
            # two issues, so the second delivery does not signal the first run
            n = 7002 if guid.startswith("guid-a") else 7003
            status, _, _, doc = self.send("gh", self.issue(n), guid)
            self.assertEqual(status, 200, doc)
            started.append(doc["startedRunId"])
        self.assertNotEqual(started[0], started[1])
        self.assertEqual(self.runs_of("gh"), sorted(before + started))
        # without an id nothing is deduplicated
        doc = self.send("gh", self.issue(7004))[3]
        doc2 = self.send("gh", self.issue(7005))[3]
        self.assertNotEqual(doc["startedRunId"], doc2["startedRunId"])
        for r in started + [doc["startedRunId"], doc2["startedRunId"]]:
            self.call("cancelRun", {"runId": r})

    # -- signals -------------------------------------------------------------

    def test_redelivered_signal_is_delivered_once(self):
        run_id = self.launch("twosig", {})
        self.wait_run(run_id, "waiting-event")
        status, _, first, doc = self.send("twosig", {"n": 1}, "sig-1")
        self.assertEqual(status, 200, doc)
        self.assertEqual([(d["runId"], d["seq"]) for d in doc["delivered"]], [(run_id, 1)])
        self.assertEqual(self.node_states(run_id)["first"], "finished")
        self.assertEqual(self.node_states(run_id)["second"], "waiting")
        status, h, again, _ = self.send("twosig", {"n": 1}, "sig-1")
        self.assertEqual((status, again), (200, first))
        self.assertEqual(h.get("idempotent-replayed"), "true")
        self.assertEqual(self.node_states(run_id)["second"], "waiting", "the repeat signalled nothing")
        self.assertEqual(self.get(run_id)["status"], "waiting-event")
        # a new delivery id is a new signal
        status, _, _, doc = self.send("twosig", {"n": 2}, "sig-2")
        self.assertEqual([(d["runId"], d["seq"]) for d in doc["delivered"]], [(run_id, 2)])
        self.assertEqual(self.wait_run(run_id)["status"], "finished")

    # -- the header ----------------------------------------------------------

    def test_header_name_is_per_webhook(self):
        before = self.runs_of("custom")
        doc = self.send("custom", {"a": 1}, "req-1", header="X-Request-Id")[3]
        run_id = doc["startedRunId"]
        status, h, _, again = self.send("custom", {"a": 1}, "req-1", header="x-request-id")
        self.assertEqual(again["startedRunId"], run_id)
        self.assertEqual(h.get("idempotent-replayed"), "true")
        # GitHub's header means nothing to this webhook
        a = self.send("custom", {"a": 1}, headers={GH: "same", "X-Request-Id": "req-2"})[3]
        b = self.send("custom", {"a": 1}, headers={GH: "same", "X-Request-Id": "req-3"})[3]
        self.assertEqual(len({run_id, a["startedRunId"], b["startedRunId"]}), 3)
        self.assertEqual(len(self.runs_of("custom")), len(before) + 3)
        # ids are per workflow: the same id on another webhook is another delivery
        doc = self.send("gh", self.issue(7101), "req-1")[3]
        self.assertIn("startedRunId", doc)
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    def test_empty_header_name_turns_it_off(self):
        before = self.runs_of("off")
        ids = {self.send("off", {"a": 1}, "same")[3]["startedRunId"] for _ in range(2)}
        self.assertEqual(len(ids), 2)
        self.assertEqual(len(self.runs_of("off")), len(before) + 2)

    def test_unsigned_deliveries_are_never_recorded(self):
        # a webhook without a secret: ids are ignored, even malformed ones
        before = self.runs_of("open")
        for guid in ("open-1", "open-1", "not valid"):
            status, h, _, doc = self.send("open", {"a": 1}, guid, signed=False)
            self.assertEqual(status, 200, doc)
            self.assertNotIn("idempotent-replayed", h)
        self.assertEqual(len(self.runs_of("open")), len(before) + 3)
        # a forged delivery claiming an id is refused and leaves nothing
        # behind: the real delivery with that id acts
        status, _, _, doc = self.send("gh", self.issue(7201), "guid-7201", signed=False)
        self.assertErr(status, doc, 401, "Unauthorized")
        status, _, _, doc = self.send("gh", self.issue(7201), "guid-7201",
                                      headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}, signed=False)
        self.assertErr(status, doc, 401, "Unauthorized")
        status, h, _, doc = self.send("gh", self.issue(7201), "guid-7201")
        self.assertEqual(status, 200, doc)
        self.assertNotIn("idempotent-replayed", h)
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    def test_malformed_delivery_ids_are_400(self):
        before = self.runs_of("gh")
        for bad in ("", "x" * 129, "has space", "tab\there", "caf\u00e9"):
            with self.subTest(bad=bad):
                status, _, _, doc = self.send("gh", self.issue(7301), bad)
                err = self.assertErr(status, doc, 400, "InvalidRequest")
                self.assertEqual(err["path"], "headers.x-github-delivery")
                self.assertTrue(err["message"].startswith("headers.x-github-delivery: "), err)
        # sent twice, with different values: which one would count?
        body = json.dumps(self.issue(7301)).encode()
        with self.server.raw() as c:
            c.send(("POST /webhooks/gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: %s\r\n"
                    "X-GitHub-Delivery: one\r\nX-GitHub-Delivery: two\r\n"
                    "Content-Length: %d\r\n\r\n" % (sign(body), len(body))).encode() + body)
            r = c.read_response()
        err = self.assertErr(r.status, r.json(), 400, "InvalidRequest")
        self.assertEqual(err["path"], "headers.x-github-delivery")
        self.assertIn("2 times", err["message"])
        self.assertEqual(self.runs_of("gh"), before, "a refused delivery starts nothing")
        # the longest id accepted, and the custom header's name in the path
        status, _, _, doc = self.send("gh", self.issue(7302), "y" * 128)
        self.assertEqual(status, 200, doc)
        self.call("cancelRun", {"runId": doc["startedRunId"]})
        status, _, _, doc = self.send("custom", {"a": 1}, "with space", header="X-Request-Id")
        self.assertEqual(self.assertErr(status, doc, 400, "InvalidRequest")["path"], "headers.x-request-id")

    def test_a_repeat_with_another_body_gets_the_first_answer(self):
        doc = self.send("gh", self.issue(7401), "guid-7401")[3]
        status, h, _, again = self.send("gh", self.issue(7402), "guid-7401")
        self.assertEqual(again, doc)
        self.assertEqual(h.get("idempotent-replayed"), "true")
        self.assertIn("guid-7401 repeated with a different body", self.server.stderr())
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    def test_errors_are_not_recorded(self):
        # nothing was done, so the repeat tries again
        bad = {"issue": {"number": 7501}, "payload": [1]}
        for _ in range(2):
            status, h, _, doc = self.send("gh", bad, "guid-7501")
            self.assertErr(status, doc, 400, "InvalidInput")
            self.assertNotIn("idempotent-replayed", h)
        # a write refused while starting the run: an error, nothing left
        # behind; once writes work the same delivery starts exactly one run
        before = self.runs_of("gh")
        self.server.sql("CREATE TRIGGER no_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'refused'); END")
        try:
            status, _, _, doc = self.send("gh", self.issue(7502), "guid-7502")
            self.assertGreaterEqual(status, 500, doc)
            self.assertIs(doc["ok"], False)
        finally:
            self.server.sql("DROP TRIGGER no_runs")
        self.assertEqual(self.runs_of("gh"), before)
        doc = self.send("gh", self.issue(7502), "guid-7502")[3]
        again = self.send("gh", self.issue(7502), "guid-7502")[3]
        self.assertEqual(again["startedRunId"], doc["startedRunId"])
        self.assertEqual(self.runs_of("gh"), sorted(before + [doc["startedRunId"]]))
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    # -- durability and recovery ---------------------------------------------

    def test_a_restart_and_a_crash_keep_the_dedupe(self):
        status, _, first, doc = self.send("gh", self.issue(7601), "guid-7601")
        run_id = doc["startedRunId"]
        before = self.runs_of("gh")
        self.server.stop()
        self.server.start()
        status, h, again, _ = self.send("gh", self.issue(7601), "guid-7601")
        self.assertEqual((status, again), (200, first))
        self.assertEqual(h.get("idempotent-replayed"), "true")
        self.server.kill()      # no shutdown code runs
        self.server.start()
        self.assertEqual(self.send("gh", self.issue(7601), "guid-7601")[2], first)
        self.assertEqual(self.runs_of("gh"), before)
        self.call("cancelRun", {"runId": run_id})

    def refuse_answers(self):
        self.server.sql("CREATE TRIGGER no_answers BEFORE INSERT ON webhook_deliveries "
                        "BEGIN SELECT RAISE(ABORT, 'refused'); END")

    def allow_answers(self):
        self.server.sql("DROP TRIGGER no_answers")

    def test_lost_answer_is_recovered_from_the_started_run(self):
        # As after a crash between starting the run and recording the
        # answer: the run exists, its answer does not.
        before = self.runs_of("gh")
        self.refuse_answers()
        try:
            status, h, first, doc = self.send("gh", self.issue(7701), "guid-7701")
        finally:
            self.allow_answers()
        self.assertEqual(status, 200, doc)
        run_id = doc["startedRunId"]
        self.assertIn("the answer to delivery guid-7701 was not recorded", self.server.stderr())
        status, h, again, doc2 = self.send("gh", self.issue(7701), "guid-7701")
        self.assertEqual(status, 200, doc2)
        self.assertNotIn("idempotent-replayed", h, "recomputed, not read back")
        self.assertEqual(doc2, doc, "the same answer, found from the run's idempotency key")
        self.assertEqual(self.runs_of("gh"), sorted(before + [run_id]), "no second run")
        # the recovered answer was recorded
        h = self.send("gh", self.issue(7701), "guid-7701")[1]
        self.assertEqual(h.get("idempotent-replayed"), "true")
        # the run it started now waits for this issue: a repeat must not
        # signal it either
        self.assertEqual(self.get(run_id)["status"], "waiting-event")
        self.call("cancelRun", {"runId": run_id})

    def test_lost_answer_is_recovered_from_the_signals(self):
        run_id = self.launch("twosig", {})
        self.wait_run(run_id, "waiting-event")
        self.refuse_answers()
        try:
            doc = self.send("twosig", {"n": 1}, "sig-lost")[3]
        finally:
            self.allow_answers()
        self.assertEqual([(d["runId"], d["seq"]) for d in doc["delivered"]], [(run_id, 1)])
        self.assertEqual(self.node_states(run_id)["second"], "waiting")
        again = self.send("twosig", {"n": 1}, "sig-lost")[3]
        self.assertEqual(again, doc)
        self.assertEqual(self.node_states(run_id)["second"], "waiting", "not signalled twice")
        self.call("cancelRun", {"runId": run_id})

    def test_past_the_retention_window(self):
        # The answer is forgotten after 7 days, what the delivery did is not:
        # a repeat is answered from the run, and starts nothing.
        doc = self.send("gh", self.issue(7801), "guid-7801")[3]
        before = self.runs_of("gh")
        self.server.sql("UPDATE webhook_deliveries SET received_at_ms = received_at_ms - %d "
                        "WHERE delivery_id = 'guid-7801'" % (8 * DAY_MS))
        status, h, _, again = self.send("gh", self.issue(7801), "guid-7801")
        self.assertEqual(status, 200)
        self.assertNotIn("idempotent-replayed", h)
        self.assertEqual(again["startedRunId"], doc["startedRunId"])
        self.assertEqual(self.runs_of("gh"), before)
        self.call("cancelRun", {"runId": doc["startedRunId"]})

    def test_old_answers_are_pruned(self):
        for i in range(3):
            self.server.sql("INSERT INTO webhook_deliveries VALUES ('gh', 'ancient-%d', %d, 'x', 200, '{}')"
                            % (i, 1000 + i))
        self.send("custom", {"a": 1}, "prune-trigger", header="X-Request-Id")
        import sqlite3
        db = sqlite3.connect(self.server.db_path, timeout=10)
        try:
            left = db.execute("SELECT count(*) FROM webhook_deliveries WHERE delivery_id LIKE 'ancient-%'").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(left, 0)


if __name__ == "__main__":
    harness.main()
