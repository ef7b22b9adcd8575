"""POST /webhooks/{workflow} through the real binary: HMAC-SHA256 signatures
(default and custom header/prefix, wrong, missing, malformed), 404 for an
unknown workflow or one without a webhook, 400 for a non-JSON body, 413 past
maxBodyBytes, signal delivery to the waiting runs whose correlation matches
(the run then completes), runIdPath targeting one run, and starting a run
(inputPath) when no run was waiting. Every error, whichever layer answers
it, is the upstream's webhook envelope {ok: false, error: {...}} with a v1
code. Signatures are computed with hmac and hashlib. Waits are bounded
polling."""
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
        return status, parsed

    def assertErr(self, status, doc, want_status, code):
        """The webhook error envelope: exactly {ok: false, error} (no RPC
        frame members), the error a v1 error object."""
        self.assertEqual(status, want_status, doc)
        self.assertEqual(set(doc), {"ok", "error"}, doc)
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


if __name__ == "__main__":
    harness.main()
