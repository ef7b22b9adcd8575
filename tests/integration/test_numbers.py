"""Numbers no int64_t can hold, through the real binary.

cJSON keeps every JSON number as a double, and converting a double outside
the int64_t range to int64_t is undefined behaviour. Every place that asks
"is this an integer?" must therefore answer no for 1e300 and -1e19 without
converting them: the WebSocket connect frame (before auth), the HTTP
request codec, and an approval's decisionSchema. In the sanitizer build
(make check runs these tests against it too) UBSan halts the server on any
such conversion, which the harness sees as a crash or a missing answer.
"""
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import yaml  # noqa: E402
import websockets  # noqa: E402  (python3-websockets)

WAIT_S = 20.0
OP = "op-token"
HUGE = ["1e300", "-1e19", "9223372036854775808", "-9.3e18"]

WORKFLOW = {"name": "gate", "root": {"sequence": [
    {"approval": {"id": "gate", "title": "Level?", "decisionSchema": {"type": "integer"}}},
]}}
CONFIG = ("listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n"
          "    op-token: { role: operator, scopes: [\"*\"], userId: \"user:op\" }\n"
          "workflows:\n  gate: { file: wf/gate.yaml }\n")


async def ws_exchange(port, raw_frames):
    """Open a socket, skip connect.challenge, send each raw frame text and
    collect the response to each (by its id)."""
    ws = await asyncio.wait_for(
        websockets.connect("ws://127.0.0.1:%d/" % port, ping_interval=None, close_timeout=2,
                           compression=None), WAIT_S)
    try:
        challenge = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert challenge["event"] == "connect.challenge", challenge
        answers = []
        for text in raw_frames:
            await ws.send(text)
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                if frame.get("type") == "res":
                    answers.append(frame)
                    break
        return answers
    finally:
        await ws.close()


class HugeNumbers(harness.ServerTestCase):
    CONFIG = CONFIG
    FILES = {"wf/gate.yaml": yaml.safe_dump(WORKFLOW, sort_keys=False)}

    def test_websocket_connect_protocol_bounds(self):
        """minProtocol/maxProtocol are read before anyone is authenticated."""
        frames = []
        for i, n in enumerate(HUGE):
            frames.append('{"type":"req","id":"min%d","method":"connect","params":'
                          '{"minProtocol":%s,"maxProtocol":1,"client":{"name":"t"},'
                          '"auth":{"token":"%s"}}}' % (i, n, OP))
            frames.append('{"type":"req","id":"max%d","method":"connect","params":'
                          '{"minProtocol":1,"maxProtocol":%s,"client":{"name":"t"},'
                          '"auth":{"token":"%s"}}}' % (i, n, OP))
        # The socket still works afterwards: a good connect succeeds.
        frames.append('{"type":"req","id":"ok","method":"connect","params":'
                      '{"minProtocol":1,"maxProtocol":1,"client":{"name":"t"},'
                      '"auth":{"token":"%s"}}}' % OP)
        answers = asyncio.run(asyncio.wait_for(ws_exchange(self.server.port, frames), 60))
        self.assertEqual(len(answers), len(frames))
        for a in answers[:-1]:
            self.assertFalse(a["ok"], a)
            self.assertEqual(a["error"]["code"], "InvalidRequest", a)
            which = "minProtocol" if a["id"].startswith("min") else "maxProtocol"
            self.assertEqual(a["error"]["path"], "$.params." + which, a)
        self.assertTrue(answers[-1]["ok"], answers[-1])
        self.assertEqual(answers[-1]["payload"]["protocol"], 1)

    def test_http_integer_fields(self):
        for n in HUGE:
            status, _, doc = self.server.rpc_frame(json.loads(
                '{"id":"x","method":"listRuns","params":{"limit":%s}}' % n), token=OP)
            self.assertError(status, doc, "InvalidRequest", path="$.params.limit")
            body = '{"workflow":"gate","options":{"maxConcurrency":%s}}' % n
            status, _, doc = self.server.post_json("/v1/rpc/launchRun", body, token=OP)
            self.assertError(status, doc, "InvalidRequest", path="$.params.options.maxConcurrency")

    def test_approval_decision_schema_integer(self):
        status, _, doc = self.server.rpc("launchRun", {"workflow": "gate"}, token=OP)
        run_id = self.assertOk(status, doc)["runId"]
        for _ in range(int(WAIT_S / 0.05)):
            status, _, doc = self.server.rpc("listApprovals", {}, token=OP)
            if any(a["runId"] == run_id for a in self.assertOk(status, doc)):
                break
            time.sleep(0.05)
        else:
            self.fail("the approval of %s was never requested" % run_id)
        for n in HUGE:
            body = ('{"runId":"%s","nodeId":"gate","decision":{"approved":true,"value":%s}}'
                    % (run_id, n))
            status, _, doc = self.server.post_json("/v1/rpc/submitApproval", body, token=OP)
            self.assertError(status, doc, "InvalidInput")
            self.assertIn("decisionSchema", doc["error"]["message"])
        # A real integer still decides it.
        status, _, doc = self.server.rpc("submitApproval", {
            "runId": run_id, "nodeId": "gate", "decision": {"approved": True, "value": 2}}, token=OP)
        self.assertOk(status, doc)


if __name__ == "__main__":
    harness.main()
