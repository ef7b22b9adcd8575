// The upstream's published client, every v1 method it exposes, against a
// real server: the drop-in test (docs/compatibility.md).
//
//   bun tests/client/interop.ts URL TOKEN READ_TOKEN [--keep-going]
//
// TOKEN has every scope and role admin; READ_TOKEN only run:read. The server
// hosts the workflows tests/integration/test_interop.py writes:
//   flow  prepare (writes notes.txt, prints {"prepared":true,"sha":input.sha})
//         -> approval gate -> signal wait (name "go", correlationKey
//         input.ticket) -> parallel [left (static {side:"left"}),
//         right (prints {"side":"right"})] -> done (static {done:true})
//   slow  one task that sleeps 30 s (for cancelRun)
//
// The same walk through a run's life (pauseRun, whatHappened, getRunDiff and
// listRunDescendants included) runs twice: over HTTP with the client's
// named methods (client.launchRun(...), ...) and over one WebSocket with
// connection.request(...), as a user picks either. Then the streams
// (streamRunEvents, its resilient form, streamDevTools) and the methods the
// client exposes that Anvil does not serve, each checked for the error the
// compatibility page documents. Every check asserts what came back.

import { SmithersGatewayClient } from "@smithers-orchestrator/gateway-client";

import {
  Checks, call, expect, fail, isCount, isPlainObject, parseArgs, refused, show, until,
} from "./check.ts";

const args = parseArgs("interop", "READ_TOKEN ");
const readToken = args.rest[0];
if (!readToken) {
  process.stderr.write("interop: no READ_TOKEN\n");
  process.exit(2);
}
const checks = new Checks("interop", args.keepGoing);

const client = new SmithersGatewayClient({
  baseUrl: args.baseUrl,
  token: args.token,
  client: { id: "anvil-interop-test", platform: "bun" },
});
const reader = new SmithersGatewayClient({ baseUrl: args.baseUrl, token: readToken });

type Payload = Record<string, unknown>;
type Call = (method: string, params: Payload) => Promise<Payload>;

/** HTTP: the client's own named method for `method` (client.launchRun, ...). */
const overHttp: Call = async (method, params) => {
  const fn = (client as unknown as Record<string, (p: Payload) => Promise<Payload>>)[method];
  expect(typeof fn === "function", `the client has no method ${method}`);
  return fn.call(client, params);
};

function obj(v: unknown, what: string): Payload {
  expect(isPlainObject(v), `${what}: not an object: ${show(v)}`);
  return v;
}

function arr(v: unknown, what: string): unknown[] {
  expect(Array.isArray(v), `${what}: not an array: ${show(v)}`);
  return v;
}

/** The walk through one run's life over one transport. */
async function lifecycle(t: string, rpc: Call) {
  const n = (s: string) => `${t}.${s}`;
  const ticket = `T-${t}`;
  let runId = "";

  await checks.run(n("listWorkflows"), async () => {
    const wfs = arr(await call("listWorkflows", rpc("listWorkflows", {})), "listWorkflows")
      .map((w) => obj(w, "workflow"));
    const names = wfs.map((w) => w.key);
    const flow = wfs.find((w) => w.key === "flow");
    expect(flow && typeof flow.description === "string", `flow has no description: ${show(flow)}`);
    for (const want of ["flow", "slow"]) expect(names.includes(want), `no ${want} in ${show(names)}`);
    return { workflows: names };
  });

  await checks.run(n("launchRun"), async () => {
    const p = obj(await call("launchRun", rpc("launchRun", {
      workflow: "flow", input: { sha: "abc123", ticket },
      options: { startedBy: { harness: "  interop  ", sessionId: `s-${t}` } },
    })), "launchRun");
    expect(typeof p.runId === "string" && p.runId !== "", `no runId: ${show(p)}`);
    expect(p.workflow === "flow" && p.system === false, `launchRun ${show(p)}`);
    runId = p.runId as string;
    return { runId };
  });

  await checks.run(n("getRun.waiting-approval"), async () => {
    const p = await until("waiting-approval", () => call("getRun", rpc("getRun", { runId })),
                          (r) => r.status === "waiting-approval" || r.status === "failed");
    expect(p.status === "waiting-approval", `status ${show(p.status)}`);
    expect(p.runId === runId && p.workflowKey === "flow", `getRun: ${show(p)}`);
    expect(obj(p.input, "input").ticket === ticket, `input ${show(p.input)}`);
    // startedBy is recorded as the client's type says: trimmed.
    expect(show(p.startedBy) === show({ harness: "interop", sessionId: `s-${t}` }),
           `startedBy ${show(p.startedBy)}`);
    expect(isCount(p.frameNo), `frameNo: ${show(p.frameNo)}`);
    return { status: p.status, frameNo: p.frameNo };
  }, [n("launchRun")]);

  await checks.run(n("listRuns"), async () => {
    const runs = arr(await call("listRuns", rpc("listRuns", { filter: { limit: 100 } })), "listRuns")
      .map((r) => obj(r, "run"));
    const mine = runs.find((r) => r.runId === runId);
    expect(mine, `run ${runId} not listed: ${show(runs.map((r) => r.runId))}`);
    expect(mine.status === "waiting-approval" && mine.system === false, `listed ${show(mine)}`);
    // The client's paging and workflow filter: the newest flow run is this one.
    const flows = arr(await call("listRuns", rpc("listRuns", {
      filter: { workflow: "flow", limit: 1, offset: 0 },
    })), "listRuns(flow)").map((r) => obj(r, "run"));
    expect(flows.length === 1 && flows[0].runId === runId, `newest flow run ${show(flows)}`);
    const slow = arr(await call("listRuns", rpc("listRuns", { filter: { workflow: "slow", offset: 1000 } })),
                     "listRuns(offset)");
    expect(slow.length === 0, `past the end: ${show(slow)}`);
    return { listed: runs.length };
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("listApprovals"), async () => {
    const list = arr(await call("listApprovals", rpc("listApprovals", {})), "listApprovals")
      .map((a) => obj(a, "approval"));
    const gate = list.find((a) => a.runId === runId && a.nodeId === "gate");
    expect(gate, `no pending approval gate of ${runId}: ${show(list)}`);
    expect(gate.requestTitle === "Ship it?" && gate.workflowKey === "flow", `approval ${show(gate)}`);
    return {};
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("getNodeOutput"), async () => {
    const p = obj(await call("getNodeOutput", rpc("getNodeOutput", { runId, nodeId: "prepare" })),
                  "getNodeOutput");
    expect(p.status === "produced", `status ${show(p.status)}: ${show(p)}`);
    const row = obj(p.row, "row");
    expect(row.prepared === true && row.sha === "abc123", `row ${show(row)}`);
    return { row };
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("getNodeDiff"), async () => {
    const p = obj(await call("getNodeDiff", rpc("getNodeDiff", { runId, nodeId: "prepare" })),
                  "getNodeDiff");
    const files = arr(p.files, "files").map((f) => obj(f, "file"));
    expect(files.length === 1 && files[0].path === "notes.txt", `files ${show(files)}`);
    expect(String(files[0].patch).includes("+sha abc123"), `patch ${show(files[0].patch)}`);
    expect(obj(p.summary, "summary").filesChanged === 1, `summary ${show(p.summary)}`);
    return {};
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("getRunDiff"), async () => {
    const p = obj(await call("getRunDiff", rpc("getRunDiff", { runId })), "getRunDiff");
    expect(p.baseRef === "4b825dc642cb6eb9a060e54bf8d69288fbee4904", `baseRef ${show(p.baseRef)}`);
    expect(isCount(p.seq), `seq ${show(p.seq)}`);
    const patches = arr(p.patches, "patches").map((x) => obj(x, "patch"));
    expect(patches.length === 1 && patches[0].path === "notes.txt" && patches[0].operation === "add" &&
           String(patches[0].diff).includes("+sha abc123"), `patches ${show(patches)}`);
    return {};
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("whatHappened+listRunDescendants"), async () => {
    const w = obj(await call("whatHappened", rpc("whatHappened", { runId })), "whatHappened");
    expect(w.scope === "run" && w.source === "facts" && w.agentId === null &&
           String(w.summary).startsWith(`Run ${runId} of workflow flow is waiting-approval`),
           `whatHappened ${show(w)}`);
    const node = obj(await call("whatHappened", rpc("whatHappened", { runId, nodeId: "gate" })), "node");
    expect(node.scope === "node" && String(node.summary).startsWith("gate (approval) is waiting"),
           `whatHappened(gate) ${show(node)}`);
    const lineage = arr(await call("listRunDescendants", rpc("listRunDescendants", { runId })), "lineage");
    expect(show(lineage) === show([{ runId, parentRunId: null, depth: 0 }]), `lineage ${show(lineage)}`);
    return {};
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("pauseRun+resumeRun"), async () => {
    const p = obj(await call("pauseRun", rpc("pauseRun", { runId })), "pauseRun");
    expect(p.runId === runId && p.status === "pausing", `pauseRun ${show(p)}`);
    const r = obj(await call("resumeRun", rpc("resumeRun", { runId })), "resumeRun");
    expect(r.status === "resume_requested", `resumeRun ${show(r)}`);
    return {};
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("submitApproval"), async () => {
    // Over the WebSocket the verdict goes top-level, as the client's type allows.
    await call("submitApproval", rpc("submitApproval", t === "ws"
      ? { runId, nodeId: "gate", approved: true, note: "ship it", decision: {} }
      : { runId, nodeId: "gate", decision: { approved: true, note: "ship it" } }));
    const err = await refused("submitApproval again", rpc("submitApproval", {
      runId, nodeId: "gate", decision: { approved: true },
    }), "AlreadyDecided", t === "http" ? 409 : undefined);
    return { again: err.code };
  }, [n("getRun.waiting-approval")]);

  await checks.run(n("submitSignal"), async () => {
    await until("waiting-event", () => call("getRun", rpc("getRun", { runId })),
                (r) => r.status === "waiting-event" || r.status === "failed");
    const p = obj(await call("submitSignal", rpc("submitSignal", {
      runId, signalName: "go", correlationKey: ticket, payload: { by: t },
    })), "submitSignal");
    expect(p.delivered === true, `not delivered: ${show(p)}`);
    return { seq: p.seq };
  }, [n("submitApproval")]);

  await checks.run(n("getRun.finished"), async () => {
    const p = await until("finished", () => call("getRun", rpc("getRun", { runId })),
                          (r) => r.status === "finished" || r.status === "failed");
    expect(p.status === "finished", `status ${show(p.status)}: ${show(p)}`);
    const right = obj(await call("getNodeOutput", rpc("getNodeOutput", { runId, nodeId: "right" })),
                      "getNodeOutput(right)");
    expect(obj(right.row, "row").side === "right", `right: ${show(right)}`);
    return { frameNo: p.frameNo };
  }, [n("submitSignal")]);

  await checks.run(n("getDevToolsSnapshot"), async () => {
    const p = obj(await call("getDevToolsSnapshot", rpc("getDevToolsSnapshot", { runId })),
                  "getDevToolsSnapshot");
    expect(p.version === 1 && p.runId === runId && isCount(p.frameNo), `head ${show(p)}`);
    obj(p.root, "root");
    return { frameNo: p.frameNo };
  }, [n("getRun.finished")]);

  await checks.run(n("rewindRun+resumeRun"), async () => {
    const j = obj(await call("rewindRun", rpc("rewindRun", { runId, frameNo: 1, confirm: true })),
                  "rewindRun");
    expect(j.ok === true && j.newFrameNo === 1, `JumpResult ${show(j)}`);
    const r = obj(await call("resumeRun", rpc("resumeRun", { runId })), "resumeRun");
    expect(r.status === "resume_requested", `resumeRun ${show(r)}`);
    await until("waiting-approval again", () => call("getRun", rpc("getRun", { runId })),
                (x) => x.status === "waiting-approval");
    return { deletedFrames: j.deletedFrames };
  }, [n("getRun.finished")]);

  await checks.run(n("cancelRun"), async () => {
    const slow = obj(await call("launchRun", rpc("launchRun", { workflow: "slow", input: {} })), "launch");
    const c = obj(await call("cancelRun", rpc("cancelRun", { runId: slow.runId })), "cancelRun");
    expect(c.runId === slow.runId, `cancelRun ${show(c)}`);
    const p = await until("cancelled", () => call("getRun", rpc("getRun", { runId: slow.runId as string })),
                          (x) => x.status === "cancelled");
    return { status: p.status };
  });

  await checks.run(n("hijackRun"), async () => {
    const p = obj(await call("hijackRun", rpc("hijackRun", { runId })), "hijackRun");
    expect(p.runId === runId, `hijackRun ${show(p)}`);
    return {};
  }, [n("launchRun")]);

  await checks.run(n("cron"), async () => {
    const cronId = `interop-${t}`;
    const made = obj(await call("cronCreate", rpc("cronCreate", {
      cronId, workflow: "flow", pattern: "0 3 * * *",
    })), "cronCreate");
    expect(made.cronId === cronId, `cronCreate ${show(made)}`);
    const rows = arr(await call("cronList", rpc("cronList", {})), "cronList").map((c) => obj(c, "cron"));
    const row = rows.find((c) => c.cronId === cronId);
    expect(row && row.pattern === "0 3 * * *" && row.enabled === true && isCount(row.nextRunAtMs),
           `not listed as made: ${show(rows)}`);
    const ran = obj(await call("cronRun", rpc("cronRun", { cronId, input: { sha: "c", ticket: "c" } })), "cronRun");
    expect(typeof ran.runId === "string", `cronRun ${show(ran)}`);
    await call("cronDelete", rpc("cronDelete", { cronId }));
    const left = arr(await call("cronList", rpc("cronList", {})), "cronList").map((c) => obj(c, "cron"));
    expect(!left.some((c) => c.cronId === cronId), `still listed after cronDelete`);
    return { ranRunId: ran.runId };
  });

  await checks.run(n("errors"), async () => {
    await refused("getRun(missing)", rpc("getRun", { runId: "no-such-run" }), "RunNotFound",
                  t === "http" ? 404 : undefined);
    await refused("launchRun(unknown workflow)", rpc("launchRun", { workflow: "nope", input: {} }),
                  "InvalidInput");
    const bad = await refused("getRun(extra member)", rpc("getRun", { runId, bogus: 1 }),
                              "InvalidRequest", t === "http" ? 400 : undefined);
    // The client reads an error's details from error.details.
    expect(isPlainObject(bad.details) && bad.details.path === "$.params.bogus",
           `details ${show(bad.details)}`);
    return { invalid: bad.message };
  });
}

async function main() {
  await lifecycle("http", overHttp);

  let conn: Awaited<ReturnType<typeof client.connect>> | undefined;
  await checks.run("ws.connect", async () => {
    conn = await call("connect", client.connect());
  });
  if (conn) {
    const c = conn;
    await lifecycle("ws", (m, p) => c.requestRaw(m, p) as Promise<Payload>);
    c.close();
  }

  await checks.run("http.Forbidden", async () => {
    const e = await refused("launchRun with run:read", reader.launchRun({ workflow: "flow", input: {} }),
                            "Forbidden", 403);
    expect(e.requiredScope === "run:write", `requiredScope ${show(e.requiredScope)}`);
    const big = await refused("getNodeOutput of a missing run",
                              client.getNodeOutput({ runId: "no-such-run", nodeId: "x" }), "RunNotFound", 404);
    expect(big.details === undefined, `RunNotFound has no details: ${show(big.details)}`);
    return {};
  });

  await streams();
  await unsupported();
  checks.finish();
}

/** streamRunEvents (plain and resilient) and streamDevTools on a run driven to its end. */
async function streams() {
  let runId = "";
  await checks.run("streams.launch", async () => {
    runId = (await call("launchRun", client.launchRun({ workflow: "flow", input: { sha: "s", ticket: "S" } }))).runId;
  });
  await checks.run("streamRunEvents", async () => {
    const names: string[] = [];
    const seqs: number[] = [];
    const ac = new AbortController();
    const drive = (async () => {
      await until("waiting-approval", () => client.getRun({ runId }) as Promise<Payload>,
                  (r) => r.status === "waiting-approval");
      await client.submitApproval({ runId, nodeId: "gate", decision: { approved: true } });
      await until("waiting-event", () => client.getRun({ runId }) as Promise<Payload>,
                  (r) => r.status === "waiting-event");
      await client.submitSignal({ runId, signalName: "go", correlationKey: "S" });
    })();
    const read = (async () => {
      for await (const frame of client.streamRunEvents({ runId, afterSeq: 0 }, { signal: ac.signal })) {
        const p = obj(frame.payload, "run.event payload");
        if (frame.event !== "run.event") continue;
        names.push(String(p.event));
        seqs.push(p.seq as number);
        if (p.event === "run.completed") break;
      }
    })();
    await call("the run's events up to run.completed", Promise.all([drive, read]));
    ac.abort();
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seqs not increasing: ${show(seqs)}`);
    expect(seqs[0] === 1, `first seq ${seqs[0]}`);
    for (const want of ["run.started", "task.output", "approval.requested", "approval.decided",
                        "run.completed"]) {
      expect(names.includes(want), `no ${want} in ${show(names)}`);
    }
    return { events: names.length };
  }, ["streams.launch"]);

  await checks.run("streamRunEventsResilient", async () => {
    const names: string[] = [];
    const ac = new AbortController();
    for await (const frame of client.streamRunEventsResilient({ runId, afterSeq: 0 }, { signal: ac.signal })) {
      const p = obj(frame.payload, "payload");
      if (frame.event === "run.event") names.push(String(p.event));
      if (p.event === "run.completed") break;
    }
    ac.abort();
    expect(names[0] === "run.started" && names.at(-1) === "run.completed", `replay ${show(names)}`);
    return { replayed: names.length };
  }, ["streamRunEvents"]);

  await checks.run("streamDevTools", async () => {
    const ac = new AbortController();
    let first: Payload | undefined;
    for await (const frame of client.streamDevTools({ runId }, { signal: ac.signal })) {
      first = obj(frame.payload, "devtools.event payload");
      break;
    }
    ac.abort();
    expect(first, "no devtools.event");
    // The upstream's envelope: {streamId, runId, event: DevToolsEvent}.
    const event = obj(first.event, "devtools.event payload's event");
    expect(event.kind === "snapshot", `the first event is not a snapshot: ${show(first)}`);
    const snap = obj(event.snapshot, "snapshot");
    expect(snap.runId === runId && isCount(snap.frameNo), `snapshot ${show(first)}`);
    return { frameNo: snap.frameNo };
  }, ["streamRunEvents"]);
}

/** Methods the client exposes that Anvil does not serve: each must be refused
 * with MethodNotFound (documented in docs/compatibility.md), never a crash,
 * a hang or a wrong success. */
async function unsupported() {
  const calls: [string, () => Promise<unknown>][] = [
    ["createBrowserSession", () => client.createBrowserSession({} as never)],
    ["browserAct", () => client.browserAct({} as never)],
    ["browserContext", () => client.browserContext({} as never)],
    ["browserPick", () => client.browserPick({} as never)],
    ["closeBrowserSession", () => client.closeBrowserSession({} as never)],
    ["listBrowserSessions", () => client.listBrowserSessions({} as never)],
  ];
  for (const [method, f] of calls) {
    await checks.run(`unsupported.${method}`, async () => {
      const e = await refused(method, f(), "MethodNotFound", 404);
      return { code: e.code };
    });
  }
}

main().catch((e) => fail(`unexpected: ${e}`));
