"""What the upstream client sends is accepted and honoured (issue 11, item 1).

The upstream's published client (@smithers-orchestrator/gateway-client 0.32,
its types in @smithers-orchestrator/protocol's gatewayRpcTypes.ts) sends
members Anvil's contract used to refuse as unknown properties:
ListRunsRequest.filter.{offset, workflow, includeSystem},
ListWorkflowsRequest.filter.includeSystem, LaunchRunRequest.options.startedBy
(RunStartedBy), a top-level SubmitApprovalRequest.{approved, note} and
StreamDevToolsRequest.fromSeq. Each is checked here through the real
binary for what it does, not only that it passes validation; and the
contract stays strict about everything else.
"""
import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_ws import Client, WsTestCase, run  # noqa: E402

import yaml  # noqa: E402

OP = "op-token"
TOKENS = {
    OP: '{ role: operator, scopes: ["*"], userId: "user:op" }',
    "ops2-token": '{ role: operator, scopes: ["*"], userId: "user:ops2" }',
}
WORKFLOWS = {
    "gate": {"name": "gate", "root": {"sequence": [
        {"task": {"id": "build", "output": {"built": True}}},
        {"approval": {"id": "approve", "title": "Ship it?"}},
        {"task": {"id": "ship", "output": {"shipped": True}}},
    ]}},
    "quick": {"name": "quick", "root": {"task": {"id": "only", "output": {"x": 1}}}},
    "other": {"name": "other", "root": {"task": {"id": "only", "output": {"y": 2}}}},
    "steps": {"name": "steps", "root": {"sequence": [
        {"task": {"id": "s%d" % i, "output": {"i": i}}} for i in range(6)
    ]}},
}


def make_config():
    text = "listen: 127.0.0.1:0\nauth:\n  mode: token\n  tokens:\n"
    text += "".join("    %s: %s\n" % (k, v) for k, v in TOKENS.items())
    text += "workflows:\n" + "".join("  %s: { file: wf/%s.yaml }\n" % (k, k) for k in WORKFLOWS)
    files = {"wf/%s.yaml" % k: yaml.safe_dump(v, sort_keys=False) for k, v in WORKFLOWS.items()}
    return text, files


CONFIG, FILES = make_config()
WAIT_S = 20.0
MAX_SAFE = 2 ** 53 - 1


class FieldsCase(WsTestCase):
    CONFIG = CONFIG
    FILES = FILES

    def call(self, method, params=None, token=OP):
        status, _, doc = self.server.rpc(method, params or {}, token=token)
        return self.assertOk(status, doc)

    def refuse(self, method, params, code, path=None, token=OP):
        status, _, doc = self.server.rpc(method, params, token=token)
        return self.assertError(status, doc, code, path=path)

    def launch(self, workflow, options=None, input=None):
        params = {"workflow": workflow, "input": input or {}}
        if options is not None:
            params["options"] = options
        return self.call("launchRun", params)

    def wait_status(self, run_id, statuses):
        deadline = time.monotonic() + WAIT_S
        while True:
            view = self.call("getRun", {"runId": run_id})
            if view["status"] in statuses:
                return view
            if time.monotonic() > deadline:
                self.fail("run %s is %s, not one of %s" % (run_id, view["status"], statuses))
            time.sleep(0.02)

    def db_row(self, sql, args):
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchone()
        finally:
            db.close()


# --------------------------------------------------------------------------
# launchRun options.startedBy
# --------------------------------------------------------------------------

class StartedBy(FieldsCase):
    def listed(self, run_id):
        for r in self.call("listRuns", {"filter": {"limit": 1000}}):
            if r["runId"] == run_id:
                return r
        self.fail("run %s not listed" % run_id)

    def test_recorded_normalised_and_shown(self):
        sent = {"harness": "  codex\t", "sessionId": "\u00a0thread_123\u2028 ",
                "prompt": "  Ship the release branch.  ", "detected": True}
        res = self.launch("quick", {"startedBy": sent})
        # the launch answer is the client's LaunchRunResponse: no startedBy in it
        self.assertEqual(set(res), {"runId", "workflow", "system"})
        self.assertIs(res["system"], False)
        want = {"harness": "codex", "sessionId": "thread_123",
                "prompt": "  Ship the release branch.  ", "detected": True}
        view = self.wait_status(res["runId"], ("finished",))
        self.assertEqual(view["startedBy"], want)
        # provenance is self-reported: the authenticated identity is untouched
        self.assertEqual((view["ownerId"], view["role"]), ("user:op", "operator"))
        self.assertEqual(self.listed(res["runId"])["startedBy"], want)
        stored = self.db_row("SELECT started_by_json FROM runs WHERE run_id = ?", (res["runId"],))
        self.assertEqual(json.loads(stored[0]), want)

    def test_without_started_by_nothing_is_shown(self):
        res = self.launch("quick")
        self.assertNotIn("startedBy", self.call("getRun", {"runId": res["runId"]}))
        self.assertNotIn("startedBy", self.listed(res["runId"]))
        self.assertIsNone(self.db_row("SELECT started_by_json FROM runs WHERE run_id = ?",
                                      (res["runId"],))[0])

    def test_blank_members_are_dropped_and_empty_is_not_recorded(self):
        for sent, want in [({}, None),
                           ({"harness": " \t\n", "sessionId": "\ufeff"}, None),
                           ({"harness": " ", "prompt": ""}, {"prompt": ""}),
                           ({"sessionId": " s-1 "}, {"sessionId": "s-1"})]:
            with self.subTest(sent=sent):
                run_id = self.launch("quick", {"startedBy": sent})["runId"]
                view = self.call("getRun", {"runId": run_id})
                if want is None:
                    self.assertNotIn("startedBy", view)
                else:
                    self.assertEqual(view["startedBy"], want)

    def test_prompt_is_clipped_visibly_at_8192_code_points(self):
        exact = "\u00e9" * 8192                        # 8192 code points, 16384 bytes
        run_id = self.launch("quick", {"startedBy": {"prompt": exact}})["runId"]
        self.assertEqual(self.call("getRun", {"runId": run_id})["startedBy"]["prompt"], exact)
        long = "ab\U0001F600" * 3000                   # 9000 code points
        run_id = self.launch("quick", {"startedBy": {"prompt": long}})["runId"]
        got = self.call("getRun", {"runId": run_id})["startedBy"]["prompt"]
        self.assertEqual(len(got), 8192)
        self.assertEqual(got, long[:8191] + "\u2026")

    def test_limits_and_detected_rules(self):
        path = "$.params.options.startedBy."
        # lengths count code points, before trimming (as the upstream's schema)
        ok = self.launch("quick", {"startedBy": {"harness": "\u00e9" * 64, "sessionId": "s" * 256}})
        self.assertEqual(self.call("getRun", {"runId": ok["runId"]})["startedBy"],
                         {"harness": "\u00e9" * 64, "sessionId": "s" * 256})
        for sent, field, phrase in [
                ({"harness": "h" * 65}, "harness", "at most 64 characters"),
                ({"sessionId": "s" * 257}, "sessionId", "at most 256 characters"),
                ({"harness": "codex", "detected": False}, "detected", "must be true"),
                ({"detected": True}, "detected", "detected needs a non-blank harness or sessionId"),
                ({"detected": True, "harness": "   ", "prompt": "p"}, "detected",
                 "detected needs a non-blank harness or sessionId"),
                ({"harness": 7}, "harness", "expected string"),
                ({"who": "me"}, "who", 'unknown property "who"')]:
            with self.subTest(sent=sent):
                err = self.refuse("launchRun", {"workflow": "quick", "options": {"startedBy": sent}},
                                  "InvalidRequest", path=path + field)
                self.assertIn(phrase, err["message"])

    def test_idempotent_repeat_keeps_the_first_provenance(self):
        first = self.launch("quick", {"idempotencyKey": "sb-k", "startedBy": {"harness": "first"}})
        again = self.launch("quick", {"idempotencyKey": "sb-k", "startedBy": {"harness": "second"}})
        self.assertEqual(again, first)
        self.assertEqual(self.call("getRun", {"runId": first["runId"]})["startedBy"], {"harness": "first"})

    def test_rerun_is_the_callers_launch_without_the_old_provenance(self):
        orig = self.launch("quick", {"startedBy": {"harness": "codex"}})
        self.wait_status(orig["runId"], ("finished",))
        new = self.call("runs.rerun", {"runId": orig["runId"]})
        self.assertIs(new["system"], False)
        self.assertNotIn("startedBy", self.call("getRun", {"runId": new["runId"]}))

    def test_durable_across_a_restart_and_in_the_hello_snapshot(self):
        res = self.launch("gate", {"startedBy": {"harness": "claude", "sessionId": "abc"}})
        self.wait_status(res["runId"], ("waiting-approval",))
        self.server.kill()               # no shutdown code runs
        self.server.start()
        view = self.call("getRun", {"runId": res["runId"]})
        self.assertEqual(view["startedBy"], {"harness": "claude", "sessionId": "abc"})

        async def go():
            c = await Client.open(self.server.port)
            h = await c.connect()
            await c.close()
            return h
        hello = self.assertWsOk(run(go()))
        snap = {r["runId"]: r for r in hello["snapshot"]["runs"]}
        self.assertEqual(snap[res["runId"]]["startedBy"], {"harness": "claude", "sessionId": "abc"})
        self.assertIs(snap[res["runId"]]["system"], False)
        self.call("cancelRun", {"runId": res["runId"]})


# --------------------------------------------------------------------------
# listRuns filter.offset / filter.workflow / filter.includeSystem
# --------------------------------------------------------------------------

class ListRunsFilters(FieldsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = []
        for i in range(12):
            wf = "quick" if i % 3 else "other"
            status, _, doc = cls.server.rpc("launchRun", {"workflow": wf, "input": {"i": i}}, token=OP)
            assert status == 200, doc
            cls.ids.append(doc["payload"]["runId"])
        # wait until every run ended, so no status changes under a page
        deadline = time.monotonic() + WAIT_S
        while True:
            status, _, doc = cls.server.rpc("listRuns", {"filter": {"status": "finished"}}, token=OP)
            if len(doc["payload"]) >= 12 or time.monotonic() > deadline:
                break
            time.sleep(0.02)

    def ids_of(self, filt):
        return [r["runId"] for r in self.call("listRuns", {"filter": filt})]

    def test_offset_pages_the_newest_first_order(self):
        everything = self.ids_of({"limit": 1000})
        self.assertEqual(sorted(everything), sorted(self.ids))
        self.assertEqual(everything[0], self.ids[-1], "newest first")
        pages = [self.ids_of({"limit": 5, "offset": o}) for o in (0, 5, 10)]
        self.assertEqual([len(p) for p in pages], [5, 5, 2])
        self.assertEqual(pages[0] + pages[1] + pages[2], everything)
        self.assertEqual(self.ids_of({"offset": 0}), everything)       # default limit 50
        self.assertEqual(self.ids_of({"offset": 3}), everything[3:])
        self.assertEqual(self.ids_of({"offset": 12}), [])
        self.assertEqual(self.ids_of({"offset": MAX_SAFE, "limit": 1}), [])

    def test_workflow_filters_and_pages_with_status(self):
        everything = self.call("listRuns", {"filter": {"limit": 1000}})
        other = [r["runId"] for r in everything if r["workflowKey"] == "other"]
        self.assertEqual(len(other), 4)
        self.assertEqual(self.ids_of({"workflow": "other"}), other)
        self.assertEqual(self.ids_of({"workflow": "other", "status": "finished"}), other)
        self.assertEqual(self.ids_of({"workflow": "other", "status": "running"}), [])
        self.assertEqual(self.ids_of({"workflow": "other", "limit": 3, "offset": 1}), other[1:4])
        self.assertEqual(self.ids_of({"workflow": "other", "status": "finished", "limit": 2,
                                      "offset": 2}), other[2:4])
        quick = [r["runId"] for r in everything if r["workflowKey"] == "quick"]
        self.assertEqual(self.ids_of({"workflow": "quick", "offset": 7}), quick[7:])
        # an unknown key matches no run, as a status no run has does
        self.assertEqual(self.ids_of({"workflow": "no-such-workflow"}), [])

    def test_include_system_changes_nothing(self):
        everything = self.call("listRuns", {"filter": {"limit": 1000}})
        for flag in (True, False):
            with self.subTest(includeSystem=flag):
                self.assertEqual(self.call("listRuns", {"filter": {"limit": 1000, "includeSystem": flag}}),
                                 everything)
        self.assertTrue(all(r["system"] is False for r in everything))

    def test_bad_values_name_the_field(self):
        for filt, field, phrase in [({"offset": -1}, "offset", "must be >= 0"),
                                    ({"offset": 1.5}, "offset", "expected integer"),
                                    ({"offset": "3"}, "offset", "expected integer"),
                                    ({"offset": MAX_SAFE + 1}, "offset", ""),
                                    ({"workflow": 3}, "workflow", "expected string"),
                                    ({"includeSystem": "yes"}, "includeSystem", "expected boolean"),
                                    ({"limit": 1001}, "limit", "must be <= 1000")]:
            with self.subTest(filter=filt):
                err = self.refuse("listRuns", {"filter": filt}, "InvalidRequest",
                                  path="$.params.filter." + field)
                self.assertIn(phrase, err["message"])


class ListWorkflowsIncludeSystem(FieldsCase):
    def test_include_system_changes_nothing(self):
        plain = self.call("listWorkflows")
        self.assertEqual([w["key"] for w in plain], sorted(WORKFLOWS))
        self.assertTrue(all(w["system"] is False for w in plain))
        for filt in ({"includeSystem": True}, {"includeSystem": False},
                     {"includeSystem": True, "hasUi": False}):
            with self.subTest(filter=filt):
                self.assertEqual(self.call("listWorkflows", {"filter": filt}), plain)
        self.assertEqual(self.call("listWorkflows", {"filter": {"includeSystem": True, "hasUi": True}}), [])
        self.refuse("listWorkflows", {"filter": {"includeSystem": 1}}, "InvalidRequest",
                    path="$.params.filter.includeSystem")


# --------------------------------------------------------------------------
# submitApproval: a top-level approved (and note)
# --------------------------------------------------------------------------

class SubmitApprovalTopLevel(FieldsCase):
    def waiting(self):
        run_id = self.launch("gate")["runId"]
        self.wait_status(run_id, ("waiting-approval",))
        return run_id

    def pending(self, run_id):
        return [a for a in self.call("listApprovals", {"filter": {"runId": run_id}})]

    def approve_row(self, run_id):
        return self.call("getNodeOutput", {"runId": run_id, "nodeId": "approve"})["row"]

    def test_top_level_approved_decides(self):
        run_id = self.waiting()
        res = self.call("submitApproval", {"runId": run_id, "nodeId": "approve", "approved": True,
                                           "decision": {"note": "ship it"}})
        self.assertEqual(res, {"runId": run_id, "nodeId": "approve", "iteration": 0, "approved": True})
        self.assertEqual(self.wait_status(run_id, ("finished", "failed"))["status"], "finished")
        row = self.approve_row(run_id)
        self.assertIs(row["approved"], True)
        self.assertEqual(row["note"], "ship it")

    def test_top_level_denial_and_note(self):
        run_id = self.waiting()
        res = self.call("submitApproval", {"runId": run_id, "nodeId": "approve", "approved": False,
                                           "note": "not today", "decision": {}})
        self.assertIs(res["approved"], False)
        self.assertEqual(self.wait_status(run_id, ("finished", "failed"))["status"], "failed")
        db_note = self.db_row("SELECT status, note FROM approvals WHERE run_id = ? AND node_id = ?",
                              (run_id, "approve"))
        self.assertEqual(db_note[1], "not today")

    def test_both_places_agreeing_is_accepted(self):
        run_id = self.waiting()
        res = self.call("submitApproval", {"runId": run_id, "nodeId": "approve", "approved": True,
                                           "note": "same", "decision": {"approved": True, "note": "same"}})
        self.assertIs(res["approved"], True)
        self.assertEqual(self.approve_row(run_id)["note"], "same")

    def test_disagreement_and_absence_are_refused_and_decide_nothing(self):
        run_id = self.waiting()
        base = {"runId": run_id, "nodeId": "approve"}
        err = self.refuse("submitApproval", dict(base, approved=True, decision={"approved": False}),
                          "InvalidRequest", path="$.params.approved")
        self.assertEqual(err["message"],
                         "$.params.approved: true contradicts $.params.decision.approved (false)")
        self.refuse("submitApproval", dict(base, approved=False, decision={"approved": True}),
                    "InvalidRequest", path="$.params.approved")
        err = self.refuse("submitApproval", dict(base, decision={"note": "hm"}), "InvalidRequest",
                          path="$.params.decision.approved")
        self.assertIn('required property "approved" is missing', err["message"])
        self.refuse("submitApproval", dict(base, approved=True, note="a", decision={"note": "b"}),
                    "InvalidRequest", path="$.params.note")
        # decision stays required, and strict
        self.refuse("submitApproval", dict(base, approved=True), "InvalidRequest",
                    path="$.params.decision")
        self.refuse("submitApproval", dict(base, decision={"approved": True, "reason": "x"}),
                    "InvalidRequest", path="$.params.decision.reason")
        # nothing was decided by any of them
        self.assertEqual(len(self.pending(run_id)), 1)
        self.assertEqual(self.call("getRun", {"runId": run_id})["status"], "waiting-approval")
        self.call("submitApproval", dict(base, decision={"approved": True}))
        self.assertEqual(self.pending(run_id), [])


# --------------------------------------------------------------------------
# streamDevTools fromSeq
# --------------------------------------------------------------------------

class DevToolsFromSeq(FieldsCase):
    def finished_steps(self):
        run_id = self.launch("steps")["runId"]
        view = self.wait_status(run_id, ("finished",))
        self.assertGreater(view["frameNo"], 6)
        return run_id, view["frameNo"]

    async def stream(self, c, params, want_events):
        r = await c.call("streamDevTools", params)
        if not r.get("ok"):
            return r, []
        sid = r["payload"]["streamId"]

        def mine():
            return [e for e in c.events if e["event"] == "devtools.event"
                    and e["payload"].get("streamId") == sid]
        await c.wait_for(lambda: len(mine()) >= want_events or c.closed)
        return r, mine()

    def strip(self, events):
        out = []
        for e in events:
            p = dict(e["payload"])
            p.pop("streamId")
            out.append(p)
        return out

    def test_from_seq_starts_at_that_frame_like_after_seq(self):
        run_id, latest = self.finished_steps()
        start = 3

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            want = latest - start + 1                   # the snapshot, then one delta per frame
            by_from = await self.stream(c, {"runId": run_id, "fromSeq": start}, want)
            by_after = await self.stream(c, {"runId": run_id, "afterSeq": start}, want)
            by_both = await self.stream(c, {"runId": run_id, "afterSeq": start, "fromSeq": start}, want)
            await c.close()
            return by_from, by_after, by_both
        (r_from, ev_from), (r_after, ev_after), (r_both, ev_both) = run(go())
        p = self.assertWsOk(r_from)
        self.assertEqual((p["fromSeq"], p["afterSeq"]), (start, start))
        self.assertEqual(self.assertWsOk(r_after)["fromSeq"], start)
        self.assertEqual(self.assertWsOk(r_both)["fromSeq"], start)
        self.assertEqual(ev_from[0]["payload"]["event"]["kind"], "snapshot")
        self.assertEqual(ev_from[0]["payload"]["event"]["snapshot"]["frameNo"], start)
        self.assertEqual(len(ev_from), latest - start + 1)
        self.assertEqual(self.strip(ev_from), self.strip(ev_after))
        self.assertEqual(self.strip(ev_both), self.strip(ev_after))

    def test_from_seq_refusals(self):
        run_id, latest = self.finished_steps()

        async def go():
            c = await Client.open(self.server.port)
            self.assertWsOk(await c.connect(subscribe=[]))
            out = [await c.call("streamDevTools", p) for p in (
                {"runId": run_id, "fromSeq": latest + 1},
                {"runId": run_id, "fromSeq": 2, "afterSeq": 3},
                {"runId": run_id, "fromSeq": -1},
                {"runId": run_id, "fromSeq": 1, "zzNotInTheContract": 1},
                {"runId": "no-such-run", "fromSeq": 1})]
            await c.close()
            return out
        ahead, differ, negative, unknown, missing = run(go())
        err = self.assertWsError(ahead, "SeqOutOfRange",
                                 message="fromSeq %d is newer than the latest frame %d" % (latest + 1, latest))
        self.assertEqual(err.get("fromSeq"), latest + 1)
        self.assertWsError(differ, "InvalidRequest", path="$.params.fromSeq",
                           message="$.params.fromSeq: 2 differs from $.params.afterSeq (3); they name"
                                   " the same frame")
        self.assertWsError(negative, "InvalidRequest", path="$.params.fromSeq")
        self.assertWsError(unknown, "InvalidRequest", path="$.params.zzNotInTheContract")
        self.assertWsError(missing, "RunNotFound")


# --------------------------------------------------------------------------
# strictness stays for everything else
# --------------------------------------------------------------------------

class StillStrict(FieldsCase):
    def test_unknown_members_next_to_the_new_ones_are_refused(self):
        cases = [
            ("listRuns", {"filter": {"offset": 1, "zz": 1}}, "$.params.filter.zz"),
            ("listWorkflows", {"filter": {"includeSystem": True, "zz": 1}}, "$.params.filter.zz"),
            ("launchRun", {"workflow": "quick", "options": {"startedBy": {"harness": "h", "zz": 1}}},
             "$.params.options.startedBy.zz"),
            ("submitApproval", {"runId": "r", "nodeId": "n", "approved": True, "decision": {}, "zz": 1},
             "$.params.zz"),
        ]
        for method, params, path in cases:
            with self.subTest(method=method, path=path):
                err = self.refuse(method, params, "InvalidRequest", path=path)
                self.assertIn('unknown property "zz"', err["message"])

    def test_upstream_members_anvil_cannot_honour_are_refused(self):
        """Members of the client's request types that Anvil does not
        implement stay unknown properties (docs/contract.md, "Differences
        from the upstream client's types"), rather than being accepted and
        ignored."""
        cases = [
            ("listRuns", {"filter": {"parentRunId": "r"}}, "$.params.filter.parentRunId"),
            ("launchRun", {"workflow": "quick", "options": {"allowNetwork": True}},
             "$.params.options.allowNetwork"),
            ("rewindRun", {"runId": "r", "frameNo": 1, "confirm": True, "force": True}, "$.params.force"),
            ("rewindRun", {"runId": "r", "frameNo": 1, "confirm": True, "noRevert": True},
             "$.params.noRevert"),
        ]
        for method, params, path in cases:
            with self.subTest(method=method, path=path):
                self.refuse(method, params, "InvalidRequest", path=path)


if __name__ == "__main__":
    harness.main()
