"""HTTP surface: /health, routes, 404/405, standard headers, keep-alive,
pipelining, request ids, the two frame forms, legacy aliases, and the
placeholder answer of every method that has no handler yet. The front
door's strictness (line ends, Host, chunks, trailers, upgrades, the
connection cap) is test_front_door.py."""
import json
import os
import signal
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import STUBBED, UUID_RE  # noqa: E402  (STUBBED: methods not written yet)

OP = "op-token"

DEPLOY_WF = """name: Deploy It
description: Build and ship.
root:
  task: { id: build, output: { ok: true } }
"""
PLAIN_WF = """root:
  task: { id: only, output: { ok: true } }
"""


class HttpSurface(harness.ServerTestCase):
    CONFIG = """listen: 127.0.0.1:0
protocol: 1
features: [streaming, runs, itest-feature]
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"], userId: "user:op" }
workflows:
  deploy: { file: workflows/deploy.yaml, ui: { path: /ui/deploy, dir: workflows } }
  alpha: { file: workflows/plain.yaml }
  Zeta: { file: workflows/plain.yaml }
"""
    FILES = {"workflows/deploy.yaml": DEPLOY_WF, "workflows/plain.yaml": PLAIN_WF}
    RUN = "surface-run"     # a finished run of `deploy`, launched in setUpClass

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        status, _, doc = cls.server.rpc("launchRun", {"workflow": "deploy", "options": {"runId": cls.RUN}},
                                        token=OP)
        assert status == 200 and doc["payload"]["runId"] == cls.RUN, doc

    def assertIsTheRun(self, status, doc):
        view = self.assertOk(status, doc)
        self.assertEqual(view["runId"], self.RUN)
        self.assertEqual(view["workflowKey"], "deploy")
        self.assertEqual(view["status"], "finished")
        return view

    def assertRunNotFound(self, status, doc, run_id):
        self.assertError(status, doc, "RunNotFound", 404, message="Run not found: %s" % run_id)

    # -- /health -----------------------------------------------------------

    def check_health_payload(self, p):
        self.assertEqual(set(p), {"ok", "apiVersion", "protocol", "features", "stateVersion", "uptimeMs"})
        self.assertIs(p["ok"], True)
        self.assertEqual(p["apiVersion"], "v1")
        self.assertEqual(p["protocol"], 1)
        self.assertEqual(p["features"], ["streaming", "runs", "itest-feature"])
        self.assertIsInstance(p["stateVersion"], int)
        self.assertGreaterEqual(p["stateVersion"], 0)
        self.assertIsInstance(p["uptimeMs"], int)
        self.assertGreaterEqual(p["uptimeMs"], 0)

    def test_get_health_without_auth(self):
        status, h, body = self.server.request("GET", "/health")
        self.assertEqual(status, 200)
        self.assertStandardHeaders(h)
        self.assertTrue(h.get("content-type", "").startswith("application/json"))
        self.check_health_payload(json.loads(body))

    def test_head_health_has_no_body(self):
        with self.server.raw() as c:
            c.send(harness.build_request("HEAD", "/health", content_length=False))
            r = c.read_response(head_request=True)
            self.assertEqual(r.status, 200)
            self.assertStandardHeaders(r.headers)
            # The next response on the same connection starts right away:
            # no body bytes were sent for HEAD.
            c.send(harness.build_request("GET", "/health", content_length=False))
            r2 = c.read_response()
            self.assertEqual(r2.status, 200)
            self.assertGreater(int(r.headers["content-length"]), 0)
            self.check_health_payload(r2.json())

    def test_health_rpc_matches_get_health(self):
        status, h, doc = self.server.rpc("health", {}, token=OP)
        self.check_health_payload(self.assertOk(status, doc))
        self.assertStandardHeaders(h)

    def test_health_rpc_needs_auth(self):
        status, h, doc = self.server.rpc("health", {})
        self.assertError(status, doc, "Unauthorized")
        self.assertEqual(h.get("www-authenticate"), "Bearer")

    # -- routes ------------------------------------------------------------

    def assertRouteError(self, status, h, body, want_status):
        self.assertEqual(status, want_status)
        self.assertStandardHeaders(h)
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"}, doc)
        err = doc["error"]
        self.assertEqual(err["version"], "v1")
        self.assertEqual(err["code"], "NotFound")
        self.assertEqual(err["legacyCode"], "NOT_FOUND")
        self.assertIsInstance(err["message"], str)
        return err

    def test_unknown_routes_are_json_404(self):
        for method, path in [("GET", "/"), ("GET", "/nope"), ("POST", "/v1/rpc/"),
                             ("POST", "/v1/rpc/health/extra"), ("GET", "/v2/rpc/health"),
                             ("POST", "/rpcx"), ("DELETE", "/anything")]:
            with self.subTest(method=method, path=path):
                status, h, body = self.server.request(method, path, b"{}" if method == "POST" else None)
                self.assertRouteError(status, h, body, 404)

    def test_wrong_http_method_is_405_with_allow(self):
        cases = [("POST", "/health", "GET, HEAD"), ("PUT", "/health", "GET, HEAD"),
                 ("GET", "/rpc", "POST"), ("DELETE", "/rpc", "POST"),
                 ("GET", "/v1/rpc/health", "POST"), ("PUT", "/v1/rpc/getRun", "POST")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                status, h, body = self.server.request(method, path, b"{}" if method != "GET" else None,
                                                      {"Authorization": "Bearer " + OP})
                err = self.assertRouteError(status, h, body, 405)
                self.assertEqual(h.get("allow"), allow)
                self.assertIn(method, err["message"])
                self.assertIn(path, err["message"])

    def test_query_string_is_not_part_of_the_route(self):
        status, h, body = self.server.request("GET", "/health?verbose=1")
        self.assertEqual(status, 200)
        self.check_health_payload(json.loads(body))
        status, h, doc = self.server.post_json("/v1/rpc/health?x=1", {}, token=OP)
        self.check_health_payload(self.assertOk(status, doc))

    def test_standard_headers_on_errors(self):
        for args in [("POST", "/v1/rpc/getRun", b"{}"), ("POST", "/v1/rpc/getRun", b"{not json"),
                     ("GET", "/missing", None)]:
            with self.subTest(args=args):
                status, h, _ = self.server.request(*args, headers={"Authorization": "Bearer " + OP})
                self.assertGreaterEqual(status, 400)
                self.assertStandardHeaders(h)
                self.assertTrue(h.get("content-type", "").startswith("application/json"))

    # -- connections -------------------------------------------------------

    def test_keep_alive_serves_several_requests_then_idle_close(self):
        with self.server.raw() as c:
            for i in range(3):
                c.send(harness.build_request("POST", "/v1/rpc/health", b"{}",
                                             {"Authorization": "Bearer " + OP, "x-request-id": "ka-%d" % i}))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertNotEqual(r.headers.get("connection", "").lower(), "close")
                self.assertEqual(r.json()["id"], "ka-%d" % i)
            # An idle keep-alive connection is closed by the server (after ~5 s).
            self.assertTrue(c.wait_closed(timeout=20), "idle keep-alive connection was never closed")

    def test_connection_close_is_honoured(self):
        with self.server.raw() as c:
            c.send(harness.build_request("GET", "/health", headers={"Connection": "close"},
                                         content_length=False))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("connection", "").lower(), "close")
            self.assertTrue(c.wait_closed(timeout=10))

    def test_http10_without_keep_alive_closes(self):
        with self.server.raw() as c:
            c.send(b"GET /health HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(c.wait_closed(timeout=10))

    def test_pipelined_requests_in_one_write(self):
        auth = {"Authorization": "Bearer " + OP}
        data = (harness.build_request("POST", "/v1/rpc/health", b"{}", dict(auth, **{"x-request-id": "first"}))
                + harness.build_request("POST", "/rpc", {"id": "second", "method": "getRun",
                                                         "params": {"runId": self.RUN}}, auth)
                + harness.build_request("POST", "/v1/rpc/getRun", {"runId": "r1"},
                                        dict(auth, **{"x-request-id": "third"}))
                + harness.build_request("GET", "/health", content_length=False))
        with self.server.raw() as c:
            c.send(data)
            r1 = c.read_response()
            r2 = c.read_response()
            r3 = c.read_response()
            r4 = c.read_response()
        self.assertEqual(r1.status, 200)
        self.assertEqual(r1.json()["id"], "first")
        self.assertTrue(r1.json()["ok"])
        self.assertEqual(r2.json()["id"], "second")
        self.assertIsTheRun(r2.status, r2.json())
        self.assertEqual(r3.json()["id"], "third")
        self.assertRunNotFound(r3.status, r3.json(), "r1")
        self.assertEqual(r4.status, 200)
        self.check_health_payload(r4.json())

    def test_many_pipelined_requests_answered_in_order(self):
        n = 2000
        data = b"".join(harness.build_request("POST", "/v1/rpc/health", b"{}",
                                              {"Authorization": "Bearer " + OP, "x-request-id": "p%d" % i})
                        for i in range(n))
        with self.server.raw() as c:
            sender = threading.Thread(target=c.send, args=(data,))
            sender.start()
            try:
                ids = [c.read_response().json()["id"] for _ in range(n)]
            finally:
                sender.join(30)
        self.assertEqual(ids, ["p%d" % i for i in range(n)])

    def test_connection_stays_usable_after_error_responses(self):
        with self.server.raw() as c:
            for body, token, want in [(b"{bad", OP, 400), (b"{}", "wrong", 401), (b'{"runId": 1}', OP, 400),
                                      (b'{"runId": "r"}', OP, 404), (b"{}", OP, 400),
                                      (json.dumps({"runId": self.RUN}).encode(), OP, 200)]:
                c.send(harness.build_request("POST", "/v1/rpc/getRun", body, {"Authorization": "Bearer " + token}))
                r = c.read_response()
                self.assertEqual(r.status, want)
                self.assertNotEqual(r.headers.get("connection", "").lower(), "close")
            c.send(harness.build_request("GET", "/nope", content_length=False))
            self.assertEqual(c.read_response().status, 404)
            c.send(harness.build_request("POST", "/health", b"{}"))
            self.assertEqual(c.read_response().status, 405)
            c.send(harness.build_request("GET", "/health", content_length=False))
            self.assertEqual(c.read_response().status, 200)

    def test_chunked_request_body(self):
        body = json.dumps({"id": "chunky", "method": "getRun", "params": {"runId": self.RUN}}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        with self.server.raw() as c:
            c.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
            r = c.read_response()
        self.assertEqual(r.json()["id"], "chunky")
        self.assertIsTheRun(r.status, r.json())

    def test_ambiguous_framing_is_refused(self):
        with self.server.raw() as c:
            c.send(b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertStandardHeaders(r.headers)
            self.assertError(r.status, r.json(), "InvalidRequest")
            self.assertTrue(c.wait_closed(timeout=10))

    def test_expect_100_continue(self):
        with self.server.raw() as c:
            c.send(b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                   b"x-request-id: cont\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            interim = c.read_response(head_request=True)
            self.assertEqual(interim.status, 100)
            c.send(b"{}")
            r = c.read_response()
        self.assertOk(r.status, r.json())
        self.assertEqual(r.json()["id"], "cont")

    def test_nothing_after_connection_close_is_answered(self):
        with self.server.raw() as c:
            c.send(harness.build_request("GET", "/health", headers={"Connection": "close"}, content_length=False)
                   + harness.build_request("GET", "/nope", content_length=False))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(c.wait_closed(timeout=10))

    def test_framing_errors(self):
        cases = [
            (b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400),
            (b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GARBAGE\r\n\r\n", 400),
            # Host, chunk sizes, trailers and line ends: test_front_door.py
        ]
        for data, want in cases:
            with self.subTest(data=data), self.server.raw() as c:
                c.send(data)
                r = c.read_response()
                self.assertEqual(r.status, want)
                self.assertStandardHeaders(r.headers)
                self.assertError(r.status, r.json(), "InvalidRequest", want)
                self.assertTrue(c.wait_closed(timeout=10))

    # -- request ids -------------------------------------------------------

    def test_x_request_id_becomes_response_id(self):
        status, _, doc = self.server.rpc("health", {}, token=OP, headers={"x-request-id": "req-abc"})
        self.assertOk(status, doc)
        self.assertEqual(doc["id"], "req-abc")

    def test_body_id_wins_over_x_request_id(self):
        status, _, doc = self.server.rpc_frame({"id": "body-id", "method": "health"}, token=OP,
                                               headers={"x-request-id": "header-id"})
        self.assertOk(status, doc)
        self.assertEqual(doc["id"], "body-id")

    def test_random_uuid_without_any_id(self):
        ids = set()
        for _ in range(2):
            status, _, doc = self.server.rpc("health", {}, token=OP)
            self.assertOk(status, doc)
            self.assertRegex(doc["id"], UUID_RE)
            ids.add(doc["id"])
        self.assertEqual(len(ids), 2)

    def test_x_request_id_on_errors(self):
        status, _, doc = self.server.rpc("getRun", {}, token=OP, headers={"x-request-id": "err-1"})
        self.assertError(status, doc, "InvalidRequest")
        self.assertEqual(doc["id"], "err-1")
        status, _, doc = self.server.rpc("getRun", {"runId": "r"}, headers={"x-request-id": "err-2"})
        self.assertError(status, doc, "Unauthorized")
        self.assertEqual(doc["id"], "err-2")
        # a handler's own error carries it too
        status, _, doc = self.server.rpc("getRun", {"runId": "nope"}, token=OP, headers={"x-request-id": "err-3"})
        self.assertRunNotFound(status, doc, "nope")
        self.assertEqual(doc["id"], "err-3")

    def test_x_request_id_on_a_real_result(self):
        status, _, doc = self.server.rpc("getRun", {"runId": self.RUN}, token=OP, headers={"x-request-id": "ok-1"})
        self.assertIsTheRun(status, doc)
        self.assertEqual(doc["id"], "ok-1")

    def test_overlong_x_request_id_is_not_echoed(self):
        long_id = "r" * 200
        status, _, doc = self.server.rpc("health", {}, token=OP, headers={"x-request-id": long_id})
        self.assertOk(status, doc)
        self.assertRegex(doc["id"], UUID_RE)

    def test_overlong_x_request_id_is_not_echoed_on_auth_failure(self):
        long_id = "r" * 200
        status, _, doc = self.server.rpc("health", {}, token="wrong", headers={"x-request-id": long_id})
        self.assertError(status, doc, "Unauthorized")
        self.assertLessEqual(len(doc["id"]), 128, "frame ids are bounded to 128 characters")

    # -- frame forms -------------------------------------------------------

    def test_rpc_frame_form(self):
        status, _, doc = self.server.rpc_frame({"type": "req", "id": "f1", "method": "health", "params": {}}, token=OP)
        self.check_health_payload(self.assertOk(status, doc))
        self.assertEqual(doc["id"], "f1")

    def test_rpc_frame_params_default_to_empty_object(self):
        status, _, doc = self.server.rpc_frame({"method": "listWorkflows"}, token=OP)
        self.assertEqual([w["key"] for w in self.assertOk(status, doc)], ["Zeta", "alpha", "deploy"])

    def test_rpc_frame_without_method(self):
        status, _, doc = self.server.rpc_frame({"id": "x", "params": {}}, token=OP)
        self.assertError(status, doc, "InvalidRequest", path="$.method")
        self.assertEqual(doc["id"], "x")

    def test_rpc_frame_bad_members(self):
        cases = [({"method": "health", "type": "res"}, "$.type"),
                 ({"method": "health", "id": 7}, "$.id"),
                 ({"method": 7}, "$.method"),
                 ({"method": "health", "params": []}, "$.params"),
                 ({"method": "health", "params": "x"}, "$.params"),
                 ({"method": "health", "extra": 1}, "$.extra")]
        for frame, path in cases:
            with self.subTest(frame=frame):
                status, _, doc = self.server.rpc_frame(frame, token=OP)
                self.assertError(status, doc, "InvalidRequest", path=path)

    def test_invalid_method_names(self):
        for name in ["Health", "get-run", "9run", "runs..get", "runs.", ".runs", "runs.Get", "a b"]:
            with self.subTest(name=name):
                status, _, doc = self.server.rpc_frame({"method": name}, token=OP)
                err = self.assertError(status, doc, "InvalidRequest")
                self.assertEqual(err.get("path"), "$.method")

    def test_unknown_method(self):
        status, _, doc = self.server.rpc_frame({"method": "noSuchMethod"}, token=OP)
        self.assertError(status, doc, "MethodNotFound", 404)
        status, _, doc = self.server.rpc("noSuchMethod", {}, token=OP)
        self.assertError(status, doc, "MethodNotFound", 404)

    def test_path_form_takes_a_full_frame_when_body_names_the_method(self):
        status, _, doc = self.server.rpc_frame({"id": "pf", "method": "health", "params": {}},
                                               token=OP, path="/v1/rpc/health")
        self.check_health_payload(self.assertOk(status, doc))
        self.assertEqual(doc["id"], "pf")

    def test_path_form_bare_params_are_not_a_frame(self):
        # Without "method", the body is the params object itself: "id" is
        # then an unknown parameter of health, not a frame id.
        status, _, doc = self.server.post_json("/v1/rpc/health", {"id": "x"}, token=OP)
        self.assertError(status, doc, "InvalidRequest", path="$.params.id")
        status, _, doc = self.server.post_json("/v1/rpc/getRun", {"runId": self.RUN}, token=OP)
        self.assertIsTheRun(status, doc)

    def test_path_and_frame_method_mismatch(self):
        status, _, doc = self.server.rpc_frame({"method": "listRuns", "params": {}}, token=OP,
                                               path="/v1/rpc/getRun")
        self.assertError(status, doc, "InvalidRequest")
        self.assertEqual(doc["error"]["path"], "$.method")
        status, _, doc = self.server.rpc_frame({"method": "health"}, token=OP, path="/v1/rpc/noSuchMethod")
        self.assertError(status, doc, "InvalidRequest")

    def test_path_frame_with_alias_of_the_same_method(self):
        status, _, doc = self.server.rpc_frame({"method": "runs.get", "params": {"runId": self.RUN}},
                                               token=OP, path="/v1/rpc/getRun")
        a = self.assertIsTheRun(status, doc)
        status, _, doc = self.server.rpc_frame({"method": "getRun", "params": {"runId": self.RUN}},
                                               token=OP, path="/v1/rpc/runs.get")
        self.assertEqual(self.assertIsTheRun(status, doc), a)
        status, _, doc = self.server.rpc_frame({"method": "runs.get", "params": {"runId": "r1"}},
                                               token=OP, path="/v1/rpc/getRun")
        self.assertRunNotFound(status, doc, "r1")

    def test_websocket_only_methods_refused_over_http(self):
        ws = harness.websocket_only_methods()
        self.assertTrue(ws, "the contract has WebSocket-only methods")
        for m in ws:
            for send in ("path", "frame"):
                with self.subTest(method=m["name"], form=send):
                    if send == "path":
                        status, _, doc = self.server.rpc(m["name"], m["example"], token=OP)
                    else:
                        status, _, doc = self.server.rpc_frame({"method": m["name"], "params": m["example"]}, token=OP)
                    err = self.assertError(status, doc, "InvalidRequest")
                    self.assertIn("WebSocket", err["message"])

    # -- legacy aliases and placeholders -----------------------------------

    def test_every_legacy_alias_reaches_its_method(self):
        methods = {m["name"]: m for m in harness.contract_methods()}
        aliases = harness.legacy_aliases()
        self.assertTrue(aliases)
        # Params that answer the same twice: the examples, except that a
        # launch uses an idempotency key (same key -> same run), a getRun
        # names a run that exists and a cronCreate names its cronId.
        params = {name: m["example"] for name, m in methods.items()}
        params["launchRun"] = {"workflow": "deploy", "options": {"idempotencyKey": "alias-key"}}
        params["getRun"] = {"runId": self.RUN}
        # cronCreate replaces a row with the same cronId: same answer twice.
        params["cronCreate"] = dict(methods["cronCreate"]["example"], cronId="alias-cron")
        for alias, canonical in aliases.items():
            m = methods[canonical]
            p = params[canonical]
            for form in ("frame", "path"):
                with self.subTest(alias=alias, form=form):
                    if form == "frame":
                        status, _, doc = self.server.rpc_frame({"method": alias, "params": p}, token=OP)
                        c_status, _, c_doc = self.server.rpc_frame({"method": canonical, "params": p}, token=OP)
                    else:
                        status, _, doc = self.server.rpc(alias, p, token=OP)
                        c_status, _, c_doc = self.server.rpc(canonical, p, token=OP)
                    self.assertEqual(status, c_status)
                    self.assertEqual(doc["ok"], c_doc["ok"])
                    if doc["ok"]:
                        self.assertEqual(doc["payload"], c_doc["payload"])
                    else:
                        # errors name the canonical method, whatever it was called
                        self.assertEqual(doc["error"], c_doc["error"])
                    if "http" in m["transport"]:
                        self.assertPassedValidation(status, doc, canonical)
                    if canonical in ("launchRun", "getRun"):
                        self.assertTrue(doc["ok"], doc)

    def test_alias_validation_uses_the_canonical_schema(self):
        status, _, doc = self.server.rpc_frame({"method": "runs.get", "params": {"runId": 5}}, token=OP)
        self.assertError(status, doc, "InvalidRequest", path="$.params.runId")
        status, _, doc = self.server.rpc("cron.add", {"workflow": "deploy"}, token=OP)
        self.assertError(status, doc, "InvalidRequest", path="$.params.pattern")

    def test_implemented_methods_never_answer_the_placeholder(self):
        implemented = [m for m in harness.http_methods() if m["name"] not in STUBBED]
        self.assertGreaterEqual(len(implemented), 12)
        for m in implemented:
            with self.subTest(method=m["name"]):
                status, h, doc = self.server.rpc(m["name"], m["example"], token=OP)
                self.assertPassedValidation(status, doc, m["name"])
                self.assertStandardHeaders(h)
                if not doc["ok"]:
                    self.assertNotIn("not available", doc["error"]["message"])

    # -- listWorkflows -----------------------------------------------------

    def test_list_workflows(self):
        status, _, doc = self.server.rpc("listWorkflows", {}, token=OP)
        items = self.assertOk(status, doc)
        self.assertEqual(items, [
            {"key": "Zeta", "hasUi": False, "uiPath": None, "system": False},
            {"key": "alpha", "hasUi": False, "uiPath": None, "system": False},
            {"key": "deploy", "readableName": "Deploy It", "description": "Build and ship.",
             "hasUi": True, "uiPath": "/ui/deploy", "system": False},
        ])

    def test_list_workflows_filter_has_ui(self):
        status, _, doc = self.server.rpc("listWorkflows", {"filter": {"hasUi": True}}, token=OP)
        self.assertEqual([w["key"] for w in self.assertOk(status, doc)], ["deploy"])
        status, _, doc = self.server.rpc("listWorkflows", {"filter": {"hasUi": False}}, token=OP)
        self.assertEqual([w["key"] for w in self.assertOk(status, doc)], ["Zeta", "alpha"])
        status, _, doc = self.server.rpc("listWorkflows", {"filter": {}}, token=OP)
        self.assertEqual(len(self.assertOk(status, doc)), 3)


class Shutdown(unittest.TestCase):
    """SIGTERM/SIGINT end the server with status 0 even while clients hold
    connections open (Server.stop checks the status)."""

    def run_server(self):
        s = harness.Server("listen: 127.0.0.1:0\n").start()
        self.addCleanup(s.cleanup)
        self.addCleanup(lambda: s.proc and (s.proc.kill(), s.proc.wait()))
        return s

    def test_sigterm_with_idle_and_half_sent_requests(self):
        s = self.run_server()
        idle = s.raw()
        half = s.raw()
        self.addCleanup(idle.close)
        self.addCleanup(half.close)
        half.send(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        with s.raw() as c:   # the server is up and answering
            c.send(harness.build_request("GET", "/health", content_length=False))
            self.assertEqual(c.read_response().status, 200)
        self.assertEqual(s.stop(), 0)
        self.assertTrue(idle.wait_closed(timeout=10))
        self.assertTrue(half.wait_closed(timeout=10))

    def test_sigint(self):
        s = self.run_server()
        s.proc.send_signal(signal.SIGINT)
        s.proc.wait(timeout=harness.STOP_TIMEOUT_S)
        self.assertEqual(s.proc.returncode, 0, s.stderr())
        s.proc = None
        s._out.close()
        s._err.close()


class EmptyRegistry(harness.ServerTestCase):
    CONFIG = "listen: 127.0.0.1:0\n"

    def test_list_workflows_empty(self):
        status, _, doc = self.server.rpc("listWorkflows", {})
        self.assertEqual(self.assertOk(status, doc), [])

    def test_default_health(self):
        status, _, body = self.server.request("GET", "/health")
        doc = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(doc["protocol"], 1)
        self.assertEqual(doc["features"], ["streaming", "runs"])


class ConnectionHandling(harness.ServerTestCase):
    """Framing and connection lifecycle corner cases (review fixes)."""
    CONFIG = """listen: 127.0.0.1:0
auth:
  mode: token
  tokens:
    op-token: { role: operator, scopes: ["*"] }
"""

    def check_health(self, r):
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["ok"], True)

    def test_http10_keep_alive_is_confirmed(self):
        # An HTTP/1.0 client keeps the connection only if the response says so.
        with self.server.raw() as c:
            for _ in range(2):
                c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers.get("connection", "").lower(), "keep-alive")

    def test_overlong_path_then_next_request(self):
        # The 404 for a path too long to route used to leave the connection
        # in its body state with no deadline: every later read replayed the
        # old request, and the connection was never closed.
        with self.server.raw(timeout=5) as c:
            c.send(harness.build_request("GET", "/" + "a" * 3000, content_length=False))
            r = c.read_response()
            self.assertEqual(r.status, 404)
            self.assertIn("too long", r.json()["error"]["message"])
            c.send(harness.build_request("GET", "/health", content_length=False))
            self.check_health(c.read_response())

    def test_half_closed_client_gets_every_answer(self):
        # A client may send its requests and then shut down its sending side.
        # EOF used to free the connection at once, dropping queued answers.
        n = 2000
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(harness.IO_TIMEOUT_S)
            sock.connect(("127.0.0.1", self.server.port))
            sock.sendall(harness.build_request("GET", "/health", content_length=False) * n)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 OK\r\n"), n)

    def test_http10_with_transfer_encoding_is_refused(self):
        # HTTP/1.0 has no transfer codings (RFC 9112 6.1): faulty framing.
        with self.server.raw() as c:
            c.send(b"POST /v1/rpc/health HTTP/1.0\r\nConnection: keep-alive\r\n"
                   b"Authorization: Bearer op-token\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"2\r\n{}\r\n0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertError(r.status, r.json(), "InvalidRequest")
            self.assertTrue(c.wait_closed(timeout=10))


if __name__ == "__main__":
    harness.main()
