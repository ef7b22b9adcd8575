"""Every answer Anvil gives has what the upstream client's types require
(issue 11, item 3): an audit through the real binary.

The types are those of the upstream's published client, 0.32:
@smithers-orchestrator/protocol's src/gatewayRpcTypes.ts and
@smithers-orchestrator/gateway-client's src/sync/*.ts (GatewayCronRow,
GatewayRunRow: what its data client maps cronList/cronCreate and getRun
to). TYPES below is hand-copied from them: for each type, its members
with their TypeScript types and whether they are optional, and whether the
type is open (`Record<string, unknown> & {...}`). When the published files
are installed (tests/client/node_modules, scripts/install-deps.sh), the
copy is first checked against them, so an upgraded client whose types
changed fails here instead of being audited against a stale list.

Each method Anvil shares with the client is called (both transports where
they differ) and its answer checked against the type the client's
GatewayRpcResponseMap (or data client, SmithersApi) gives it: every
required member present, every member present of its declared type, and
for a closed type no member the type does not declare. The deliberate
differences are KNOWN (docs/contract.md, "Differences from the upstream
client's types"); each must still be observed, so the list and the docs
cannot go stale either.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_ws import Client, WsTestCase, run  # noqa: E402

import yaml  # noqa: E402

CLIENT = os.path.join(harness.SOURCE_DIR, "tests", "client", "node_modules", "@smithers-orchestrator")
SOURCES = {
    "protocol": os.path.join(CLIENT, "protocol", "src", "gatewayRpcTypes.ts"),
    "sync": os.path.join(CLIENT, "gateway-client", "src", "sync"),
}

# name -> (source, open?, {member: (optional?, TypeScript type)}), copied
# from the published files named by `source`.
TYPES = {
    "LaunchRunResponse": ("protocol", False, {
        "runId": (False, "string"), "workflow": (False, "string"), "system": (False, "boolean")}),
    "ResumeRunResponse": ("protocol", False, {
        "runId": (False, "string"), "status": (False, '"resume_requested" | "already_terminal"')}),
    "CancelRunResponse": ("protocol", False, {
        "runId": (False, "string"), "status": (False, '"cancelling"')}),
    "HijackRunResponse": ("protocol", False, {
        "runId": (False, "string"), "status": (False, '"hijack-ready"'), "sessionId": (False, "string")}),
    "RewindRunResponse": ("protocol", False, {
        "ok": (False, "true"), "newFrameNo": (False, "number"), "revertedSandboxes": (False, "number"),
        "deletedFrames": (False, "number"), "deletedAttempts": (False, "number"),
        "invalidatedDiffs": (False, "number"), "durationMs": (False, "number"),
        "effectBoundary": (False, "EffectBoundaryReport")}),
    "EffectBoundaryReport": ("protocol", False, {
        "blocking": (False, "CrossedEffect[]"), "revertible": (False, "CrossedEffect[]"),
        "warnings": (False, "CrossedEffect[]")}),
    "CrossedEffect": ("protocol", False, {
        "kind": (False, '"tool" | "task"'), "toolName": (False, "string"), "nodeId": (False, "string"),
        "iteration": (False, "number"), "attempt": (False, "number"), "seq": (False, "number"),
        "effectStatus": (False, '"succeeded" | "unknown"'), "idempotent": (False, "boolean"),
        "hasRevert": (False, "boolean"), "startedAtMs": (False, "number"), "reason": (True, "string")}),
    "SubmitApprovalResponse": ("protocol", False, {
        "runId": (False, "string"), "nodeId": (False, "string"), "iteration": (False, "number"),
        "approved": (False, "boolean")}),
    "RunStartedBy": ("protocol", False, {
        "harness": (True, "string"), "sessionId": (True, "string"), "prompt": (True, "string"),
        "detected": (True, "true")}),
    "GatewayRunSummary": ("protocol", True, {
        "runId": (False, "string"), "workflowKey": (True, "string"), "status": (True, "string"),
        "createdAtMs": (True, "number"), "parentRunId": (True, "string | null"),
        "system": (False, "boolean"), "startedBy": (True, "RunStartedBy")}),
    "GatewayWorkflowSummary": ("protocol", False, {
        "key": (False, "string"), "readableName": (True, "string"), "description": (True, "string"),
        "hasUi": (False, "boolean"), "uiPath": (False, "string | null"), "system": (False, "boolean")}),
    "GatewayApprovalSummary": ("protocol", False, {
        "runId": (False, "string"), "workflowKey": (True, "string"), "nodeId": (False, "string"),
        "iteration": (False, "number"), "requestTitle": (True, "string"),
        "requestSummary": (True, "string"), "requestedAtMs": (False, "number | null"),
        "approvalMode": (True, "string"), "options": (True, "unknown"),
        "allowedScopes": (True, "readonly string[]"), "allowedUsers": (True, "readonly string[]"),
        "autoApprove": (True, "unknown")}),
    "StreamRunEventsResponse": ("protocol", False, {
        "streamId": (False, "string"), "runId": (False, "string"), "afterSeq": (False, "number | null"),
        "currentSeq": (False, "number")}),
    "GatewayEventFrame": ("protocol", False, {
        "type": (False, '"event"'), "event": (False, "string"), "payload": (True, "Payload"),
        "seq": (False, "number"), "stateVersion": (False, "number"),
        "apiVersion": (True, "SmithersApiVersion")}),
    "GatewayCronRow": ("sync", False, {
        "cronId": (False, "string"), "pattern": (False, "string"), "workflowPath": (False, "string"),
        "workflow": (False, "string"), "enabled": (False, "boolean"), "createdAtMs": (True, "number"),
        "lastRunAtMs": (True, "number | null"), "nextRunAtMs": (True, "number | null"),
        "errorJson": (True, "string | null")}),
    "GatewayRunRow": ("sync", True, {
        "runId": (False, "string"), "workflowKey": (True, "string"), "status": (True, "string"),
        "createdAtMs": (True, "number"), "parentRunId": (True, "string | null"),
        "system": (False, "boolean"), "startedAtMs": (True, "number"), "finishedAtMs": (True, "number"),
        "summary": (True, "unknown"), "runState": (True, "unknown"),
        "startedBy": (True, 'import("@smithers-orchestrator/protocol/gateway-rpc").RunStartedBy')}),
}
# Aliases the published files declare as other types.
ALIASES = {"SmithersApiVersion": '"v1"', "Payload": "unknown"}

# Deliberate differences (docs/contract.md): (type, member) -> what Anvil
# answers instead, as a predicate on the value. Each must be seen at least
# once, or this list (and the docs) have gone stale.
KNOWN = {
    # getRun answers finishedAtMs: null until the run ends, as the
    # upstream's own contract (runRecord) allows; the client's type
    # has `finishedAtMs?: number`.
    ("GatewayRunRow", "finishedAtMs"): lambda v: v is None,
}


# --------------------------------------------------------------------------
# the published TypeScript, read just far enough to compare with TYPES
# --------------------------------------------------------------------------

def _strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def _split_top(text, sep):
    """text split at `sep` outside brackets, braces, parentheses, angles and strings."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "{[(<":
            depth += 1
        elif ch in "}])>":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _declaration(src, start):
    """src from start up to the `;` that ends the declaration there."""
    depth, quote = 0, None
    for i in range(start, len(src)):
        ch = src[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[(<":
            depth += 1
        elif ch in "}])>":
            depth -= 1
        elif ch == ";" and depth == 0:
            return src[start:i]
    return src[start:]


def _norm(t):
    return re.sub(r"\s+", " ", t).strip()


def parse_ts_object_types(src):
    """{name: (open?, {member: (optional?, type)})} for every `export type
    Name = {...}` or `export type Name = Record<string, unknown> & {...}`."""
    src = _strip_comments(src)
    out = {}
    for m in re.finditer(r"export type (\w+)(?:<[^>]*>)? =", src):
        decl = _declaration(src, m.end())
        head, brace, _ = decl.partition("{")
        head = _norm(head)
        if not brace or head not in ("", "Record<string, unknown> &"):
            continue
        body = decl[len(decl.partition("{")[0]) + 1:decl.rindex("}")]
        members = {}
        for member in _split_top(body, ";"):
            mm = re.match(r"(?:readonly\s+)?(\w+)(\?)?\s*:\s*(.*)$", member, re.S)
            if mm:
                members[mm.group(1)] = (bool(mm.group(2)), _norm(mm.group(3)))
        out[m.group(1)] = (head != "", members)
    return out


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def published_types():
    """The object types of the installed client, or None when it is not installed."""
    if not os.path.exists(SOURCES["protocol"]):
        return None
    sync = {}
    for name in sorted(os.listdir(SOURCES["sync"])):
        if name.endswith(".ts"):
            sync.update(parse_ts_object_types(_read(os.path.join(SOURCES["sync"], name))))
    return {"protocol": parse_ts_object_types(_read(SOURCES["protocol"])), "sync": sync}


# --------------------------------------------------------------------------
# checking a JSON value against a TypeScript type
# --------------------------------------------------------------------------

class Audit:
    def __init__(self, test):
        self.test = test
        self.problems = []
        self.known_seen = set()
        self.checked = {}                 # type -> how many values

    def value(self, v, t, where):
        """Does v conform to TypeScript type t? Problems are collected."""
        t = _norm(t)
        alts = _split_top(t, "|")
        if len(alts) > 1:
            if not any(self._quiet(v, a) for a in alts):
                self.problems.append("%s: %r is not %s" % (where, v, t))
            return
        if t.startswith("readonly "):
            t = t[len("readonly "):]
        if t.startswith("(") and t.endswith(")"):
            return self.value(v, t[1:-1], where)
        if t.endswith(" & {}"):
            t = t[:-len(" & {}")]
        m = re.match(r'import\("[^"]+"\)\.(\w+)$', t)
        if m:
            t = m.group(1)
        if t in ALIASES:
            return self.value(v, ALIASES[t], where)
        ok = True
        if t == "unknown":
            pass
        elif t == "string":
            ok = isinstance(v, str)
        elif t == "number":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif t == "boolean":
            ok = isinstance(v, bool)
        elif t in ("true", "false"):
            ok = v is (t == "true")
        elif t == "null":
            ok = v is None
        elif re.match(r'^"[^"]*"$', t):
            ok = v == t[1:-1]
        elif t == "Record<string, unknown>":
            ok = isinstance(v, dict)
        elif t.endswith("[]"):
            ok = isinstance(v, list)
            if ok:
                for i, x in enumerate(v):
                    self.value(x, t[:-2], "%s[%d]" % (where, i))
        elif t in TYPES:
            self.object(v, t, where)
        else:
            self.problems.append("%s: the audit cannot read the type %s" % (where, t))
        if not ok:
            self.problems.append("%s: %r is not %s" % (where, v, t))

    def _quiet(self, v, t):
        saved = list(self.problems)
        self.value(v, t, "")
        ok = self.problems == saved
        self.problems = saved
        return ok

    def object(self, v, name, where):
        _, open_, members = TYPES[name]
        self.checked[name] = self.checked.get(name, 0) + 1
        if not isinstance(v, dict):
            self.problems.append("%s: %r is not an object (%s)" % (where, v, name))
            return
        for key, (optional, t) in members.items():
            here = "%s.%s" % (where, key)
            if key not in v:
                if not optional:
                    self.problems.append("%s: required by %s, missing" % (here, name))
                continue
            known = KNOWN.get((name, key))
            if known and known(v[key]):
                self.known_seen.add((name, key))
                continue
            self.value(v[key], t, here)
        if not open_:
            extra = sorted(set(v) - set(members))
            if extra:
                self.problems.append("%s: %s declares no %s" % (where, name, ", ".join(extra)))


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

OP = "op-token"
TOKENS = {OP: '{ role: admin, scopes: ["*"], userId: "user:op" }'}
WORKFLOWS = {
    "gate": {"name": "Gate", "description": "Build, approve, ship.", "root": {"sequence": [
        {"task": {"id": "build", "output": {"built": True}}},
        {"approval": {"id": "approve", "title": "Ship it?"}},
        {"task": {"id": "ship", "output": {"shipped": True}}},
    ]}},
    "tt": {"root": {"sequence": [
        {"task": {"id": "one", "run": "echo alpha > a.txt && echo '{\"step\":1}'"}},
        {"task": {"id": "two", "run": "echo beta >> a.txt && echo '{\"step\":2}'"}},
    ]}},
    "sig": {"root": {"signal": {"id": "wait", "name": "go", "correlationKey": "k"}}},
    "nightly": {"root": {"task": {"id": "only", "output": {"x": 1}}}},
}


def make_config():
    text = "listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n"
    for k in WORKFLOWS:
        extra = ', schedule: "0 3 * * *"' if k == "nightly" else ""
        text += "  %s: { file: wf/%s.yaml%s }\n" % (k, k, extra)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(v, sort_keys=False) for k, v in WORKFLOWS.items()}
    return text, files


CONFIG, FILES = make_config()
WAIT_S = 20.0


class ClientShapes(WsTestCase):
    CONFIG = CONFIG
    FILES = FILES

    def test_the_copied_types_match_the_published_client(self):
        published = published_types()
        # Like the client tests, this fails rather than skips without the
        # client: make check installs it, so a missing one is a broken setup.
        self.assertIsNotNone(published, "the upstream client is not installed in tests/client "
                                        "(scripts/install-deps.sh installs it)")
        for name, (source, open_, members) in TYPES.items():
            with self.subTest(type=name):
                self.assertIn(name, published[source], "%s is not in the published %s types" % (name, source))
                self.assertEqual(published[source][name], (open_, members))

    # -- helpers -----------------------------------------------------------

    def call(self, method, params=None):
        status, _, doc = self.server.rpc(method, params or {}, token=OP)
        self.assertFrame(doc)
        return self.assertOk(status, doc)

    def wait_status(self, run_id, statuses):
        deadline = time.monotonic() + WAIT_S
        while True:
            view = self.call("getRun", {"runId": run_id})
            if view["status"] in statuses:
                return view
            self.assertLess(time.monotonic(), deadline, "run %s stuck in %s" % (run_id, view["status"]))
            time.sleep(0.02)

    def test_every_answer_has_what_the_client_types_require(self):
        a = Audit(self)

        def expect(method, value, t):
            a.value(value, t, method)

        # launches (LaunchRunResponse), with and without startedBy
        gate = self.call("launchRun", {"workflow": "gate", "options": {"startedBy": {"harness": "codex"}}})
        expect("launchRun", gate, "LaunchRunResponse")
        tt = self.call("launchRun", {"workflow": "tt"})
        expect("launchRun", tt, "LaunchRunResponse")
        sig = self.call("launchRun", {"workflow": "sig"})
        self.wait_status(gate["runId"], ("waiting-approval",))
        self.wait_status(sig["runId"], ("waiting-event",))

        # reads of a waiting run: getRun is GatewayRunRow to the data client
        expect("getRun", self.call("getRun", {"runId": gate["runId"]}), "GatewayRunRow")
        expect("listRuns", self.call("listRuns", {"filter": {"limit": 1000}}), "GatewayRunSummary[]")
        expect("listWorkflows", self.call("listWorkflows", {"filter": {"includeSystem": True}}),
               "GatewayWorkflowSummary[]")
        approvals = self.call("listApprovals")
        self.assertTrue(approvals)
        expect("listApprovals", approvals, "GatewayApprovalSummary[]")
        expect("submitApproval", self.call("submitApproval", {
            "runId": gate["runId"], "nodeId": "approve", "decision": {"approved": True}}),
            "SubmitApprovalResponse")
        expect("getRun", self.wait_status(gate["runId"], ("finished",)), "GatewayRunRow")
        expect("submitSignal", self.call("submitSignal", {
            "runId": sig["runId"], "correlationKey": "k", "signalName": "go"}), "Record<string, unknown>")
        self.wait_status(sig["runId"], ("finished",))

        # steering
        hold = self.call("launchRun", {"workflow": "gate"})
        self.wait_status(hold["runId"], ("waiting-approval",))
        expect("resumeRun", self.call("resumeRun", {"runId": hold["runId"]}), "ResumeRunResponse")
        expect("hijackRun", self.call("hijackRun", {"runId": hold["runId"]}), "HijackRunResponse")
        expect("cancelRun", self.call("cancelRun", {"runId": hold["runId"]}), "CancelRunResponse")
        expect("resumeRun", self.call("resumeRun", {"runId": hold["runId"]}), "ResumeRunResponse")

        # node reads and time travel (Record<string, unknown> to the client)
        self.wait_status(tt["runId"], ("finished",))
        for method in ("getNodeOutput", "getNodeDiff"):
            expect(method, self.call(method, {"runId": tt["runId"], "nodeId": "one"}),
                   "Record<string, unknown>")
        expect("getDevToolsSnapshot", self.call("getDevToolsSnapshot", {"runId": tt["runId"]}),
               "Record<string, unknown>")
        rewound = self.call("rewindRun", {"runId": tt["runId"], "frameNo": 1, "confirm": True})
        expect("rewindRun", rewound, "RewindRunResponse")
        self.assertTrue(rewound["effectBoundary"]["warnings"], "the rewind crossed task attempts")

        # cron: GatewayCronRow (cronList, and cronCreate to the data client)
        expect("cronList", self.call("cronList"), "GatewayCronRow[]")
        expect("cronCreate", self.call("cronCreate", {"workflow": "nightly", "pattern": "0 4 * * *",
                                                      "cronId": "shape-cron"}), "GatewayCronRow")
        expect("cronRun", self.call("cronRun", {"cronId": "shape-cron"}), "LaunchRunResponse")
        expect("cronList", self.call("cronList", {"filter": {"workflow": "nightly"}}), "GatewayCronRow[]")
        expect("cronDelete", self.call("cronDelete", {"cronId": "shape-cron"}), "Record<string, unknown>")

        # the WebSocket: the streams' answers and every event frame
        async def go():
            c = await Client.open(self.server.port)
            hello = await c.connect(subscribe=[gate["runId"]])
            r1 = await c.call("streamRunEvents", {"runId": gate["runId"], "afterSeq": 0})
            r2 = await c.call("streamDevTools", {"runId": gate["runId"], "fromSeq": 1})
            r3 = await c.call("launchRun", {"workflow": "gate"})
            await c.wait_for(lambda: any(e["event"] == "approval.requested" for e in c.events))
            events = list(c.events)
            await c.close()
            return hello, r1, r2, r3, events
        hello, r1, r2, r3, events = run(go())
        expect("hello.snapshot.runs", self.assertWsOk(hello)["snapshot"]["runs"], "GatewayRunSummary[]")
        expect("streamRunEvents", self.assertWsOk(r1), "StreamRunEventsResponse")
        expect("streamDevTools", self.assertWsOk(r2), "Record<string, unknown>")
        expect("launchRun (WebSocket)", self.assertWsOk(r3), "LaunchRunResponse")
        self.assertGreater(len(events), 5)
        for i, e in enumerate(events):
            a.value(e, "GatewayEventFrame", "event[%d] %s" % (i, e.get("event")))

        self.assertEqual(a.problems, [], "\n".join(a.problems))
        self.assertEqual(a.known_seen, set(KNOWN),
                         "a documented difference was not observed: update KNOWN and docs/contract.md")
        audited = {"LaunchRunResponse", "ResumeRunResponse", "CancelRunResponse", "HijackRunResponse",
                   "RewindRunResponse", "CrossedEffect", "SubmitApprovalResponse", "GatewayRunSummary",
                   "GatewayWorkflowSummary", "GatewayApprovalSummary", "StreamRunEventsResponse",
                   "GatewayEventFrame", "GatewayCronRow", "GatewayRunRow", "RunStartedBy"}
        self.assertEqual(audited - set(a.checked), set(), "types no answer was checked against")

    def test_the_audit_sees_a_missing_or_mistyped_member(self):
        """The checker itself: a value missing a required member, with a
        member of the wrong type, or with an undeclared one in a closed
        type, is a problem."""
        a = Audit(self)
        a.value({"runId": "r", "workflow": "w"}, "LaunchRunResponse", "x")
        a.value({"runId": "r", "workflow": "w", "system": "false"}, "LaunchRunResponse", "y")
        a.value({"runId": "r", "workflow": "w", "system": False, "more": 1}, "LaunchRunResponse", "z")
        a.value({"runId": "r", "system": False, "anything": 1}, "GatewayRunSummary", "open")
        a.value({"key": "k", "hasUi": False, "uiPath": 3, "system": False}, "GatewayWorkflowSummary", "u")
        self.assertEqual(a.problems, [
            "x.system: required by LaunchRunResponse, missing",
            "y.system: 'false' is not boolean",
            "z: LaunchRunResponse declares no more",
            "u.uiPath: 3 is not string | null",
        ])


if __name__ == "__main__":
    harness.main()
