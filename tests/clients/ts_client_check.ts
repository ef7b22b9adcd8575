// tests/clients/ts_client_check.ts — the generated TypeScript client
// (generated/clients/typescript/anvil_client.ts) against the real binary.
// tests/integration/test_ts_client.py starts the servers and the cutting
// proxy, runs this under Bun (as TypeScript) and under Node (compiled by
// `tsc --strict`), and checks what it prints: one JSON line per check,
// {"check", "ok", ...}; the first failure ends it with status 1.
//
//   bun tests/clients/ts_client_check.ts ARGS.json
//
// ARGS.json: {url, gapUrl, proxyUrl, controlUrl, token, reader, expired,
// examples: [{name, example}]} (the contract's example of every HTTP method).

import {
  API_VERSION,
  GATEWAY_ERROR_STATUS,
  GATEWAY_METHODS,
  GatewayRpcError,
  SmithersGatewayClient,
  type GatewayEventFrame,
  type GatewayRpcErrorCode,
  type GetRunResponse,
  type StreamRunEventPayload,
} from "../../generated/clients/typescript/anvil_client.ts";

declare const process: { argv: string[]; exit(code: number): never };

type Args = {
  url: string;
  gapUrl: string;
  proxyUrl: string;
  controlUrl: string;
  token: string;
  reader: string;
  expired: string;
  examples: Array<{ name: string; example: unknown }>;
};

const WAIT_MS = 20_000;

class CheckFailed extends Error {}

function assert(cond: unknown, why: string): asserts cond {
  if (!cond) {
    throw new CheckFailed(why);
  }
}

function same(a: unknown, b: unknown, what: string) {
  assert(JSON.stringify(a) === JSON.stringify(b), `${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
}

async function check(name: string, body: () => Promise<Record<string, unknown> | void>) {
  try {
    const extra = (await body()) ?? {};
    console.log(JSON.stringify({ check: name, ok: true, ...extra }));
  } catch (error) {
    console.log(JSON.stringify({ check: name, ok: false, error: String(error) }));
    console.error(`ts_client_check: FAIL ${name}: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  }
}

async function rejects(promise: Promise<unknown>): Promise<GatewayRpcError> {
  try {
    await promise;
  } catch (error) {
    assert(error instanceof GatewayRpcError, `expected a GatewayRpcError, got ${String(error)}`);
    return error;
  }
  throw new CheckFailed("expected the call to fail");
}

async function waitStatus(client: SmithersGatewayClient, runId: string, ...statuses: string[]): Promise<GetRunResponse> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const run = await client.getRun({ runId });
    if (statuses.includes(run.status)) {
      return run;
    }
    assert(Date.now() < deadline, `run ${runId} stayed ${run.status} (wanted ${statuses.join("|")})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function camel(method: string) {
  const [head, ...rest] = method.split(".");
  return head + rest.map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
}

async function main() {
  const args = JSON.parse(await readArgs(process.argv[2])) as Args;
  const client = new SmithersGatewayClient({ baseUrl: args.url, token: args.token });
  const viaProxy = new SmithersGatewayClient({ baseUrl: args.proxyUrl, token: args.token });
  const cut = async () => {
    const res = await fetch(`${args.controlUrl}/cut`, { method: "POST" });
    const body = (await res.json()) as { cut: number };
    assert(body.cut >= 1, "the proxy carried no connection to cut");
  };

  await check("methods", async () => {
    const table = client as unknown as Record<string, unknown>;
    for (const name of Object.keys(GATEWAY_METHODS)) {
      assert(typeof table[camel(name)] === "function", `no client method for ${name}`);
    }
    same(API_VERSION, "v1", "API_VERSION");
    return { methods: Object.keys(GATEWAY_METHODS) };
  });

  await check("examples", async () => {
    const table = client as unknown as Record<string, (params: unknown) => Promise<unknown>>;
    const outcomes: Array<Record<string, unknown>> = [];
    for (const { name, example } of args.examples) {
      try {
        const payload = await table[camel(name)].call(client, example);
        assert(payload !== undefined, `${name}: no payload`);
        outcomes.push({ name, ok: true });
      } catch (error) {
        assert(error instanceof GatewayRpcError, `${name}: ${String(error)}`);
        const declared = GATEWAY_ERROR_STATUS[error.code as GatewayRpcErrorCode];
        outcomes.push({ name, ok: false, code: error.code, status: error.status, declaredStatus: declared, message: error.message });
      }
    }
    return { outcomes };
  });

  await check("lifecycle", async () => {
    assert((await client.health()).ok === true, "health");
    assert((await client.listWorkflows()).some((w) => w.key === "gate"), "listWorkflows has gate");
    const { runId } = await client.launchRun({ workflow: "gate", input: { k: "t1" } });
    await waitStatus(client, runId, "waiting-approval");
    assert((await client.listRuns({ filter: { workflow: "gate" } })).some((r) => r.runId === runId), "listRuns");
    const pending = (await client.listApprovals()).filter((a) => a.runId === runId);
    same(pending.map((a) => a.nodeId), ["approve"], "listApprovals");
    const decided = await client.submitApproval({ runId, nodeId: "approve", decision: { approved: true } });
    same(decided.approved, true, "submitApproval");
    await waitStatus(client, runId, "waiting-event");
    await client.submitSignal({ runId, correlationKey: "t1", signalName: "review.done", payload: { ok: true } });
    await waitStatus(client, runId, "finished");
    const out = await client.getNodeOutput({ runId, nodeId: "build" });
    same([out.status, out.row], ["produced", { built: "t1" }], "getNodeOutput");
    const frames = await client.framesList({ runId });
    assert(frames.frames.length > 0, "framesList");
    same((await client.attemptsGet({ runId, nodeId: "build", attempt: 1 })).nodeId, "build", "attemptsGet");
    same((await client.getDevToolsSnapshot({ runId })).runId, runId, "getDevToolsSnapshot");
    same((await client.runsDiff({ runId })).runId, runId, "runsDiff");
    const again = (await client.runsRerun({ runId })).runId;
    same((await client.cancelRun({ runId: again })).status, "cancelling", "cancelRun");
    await waitStatus(client, again, "cancelled");
    same(await client.deleteRun({ runId: again }), { runId: again, deleted: true }, "deleteRun");
    const row = await client.cronCreate({ workflow: "many", pattern: "0 3 * * *" });
    assert((await client.cronList()).some((r) => r.cronId === row.cronId), "cronList");
    const fired = await client.cronRun({ cronId: row.cronId });
    await waitStatus(client, fired.runId, "finished");
    await client.cronDelete({ cronId: row.cronId });
    const connection = await client.connect();
    try {
      const health = await connection.request("health", {});
      same(health.ok, true, "health over the socket");
    } finally {
      connection.close();
    }
  });

  await check("run-control", async () => {
    const { runId } = await client.launchRun({ workflow: "gate", input: { k: "t4" } });
    await waitStatus(client, runId, "waiting-approval");
    same(await client.pauseRun({ runId }), { runId, status: "pausing" }, "pauseRun");
    same((await client.resumeRun({ runId })).status, "resume_requested", "resumeRun");
    const hijack = await client.hijackRun({ runId });
    same([hijack.runId, hijack.status], [runId, "hijack-ready"], "hijackRun");
    const told = await client.whatHappened({ runId });
    same([told.scope, told.source], ["run", "facts"], "whatHappened");
    same(await client.listRunDescendants({ runId }), [{ runId, parentRunId: null, depth: 0 }], "listRunDescendants");
    same(typeof (await client.getRunDiff({ runId })).baseRef, "string", "getRunDiff");
    const jump = await client.rewindRun({ runId, frameNo: 1, confirm: true });
    same([jump.ok, jump.newFrameNo], [true, 1], "rewindRun");
    same((await client.resumeRun({ runId })).status, "resume_requested", "resumeRun after the rewind");
    await waitStatus(client, runId, "waiting-approval");
  });

  await check("errors", async () => {
    const missing = await rejects(client.getRun({ runId: "missing" }));
    same([missing.code, missing.status, missing.method], ["RunNotFound", 404, "getRun"], "RunNotFound");
    const reader = new SmithersGatewayClient({ baseUrl: args.url, token: args.reader });
    const forbidden = await rejects(reader.launchRun({ workflow: "gate" }));
    same([forbidden.code, forbidden.status, forbidden.requiredScope], ["Forbidden", 403, "run:write"], "Forbidden");
    const expired = new SmithersGatewayClient({ baseUrl: args.url, token: args.expired });
    const unauth = await rejects(expired.health());
    same([unauth.code, unauth.status, unauth.refresh], ["Unauthorized", 401, "anvil token issue"], "expired token");
    const bad = await rejects(client.getRun({ runId: 7 as unknown as string }));
    same([bad.code, bad.details?.path], ["InvalidRequest", "$.params.runId"], "InvalidRequest path");
    const ws = await rejects(client.connect().then((c) => c.request("getRun", { runId: "missing" })));
    same(ws.code, "RunNotFound", "error over the socket");
    const devtools = reader.streamDevTools({ runId: "missing" })[Symbol.asyncIterator]();
    const denied = await rejects(devtools.next());
    same([denied.code, denied.requiredScope], ["Forbidden", "observability:read"], "streamDevTools scope");
    const stream = client.streamRunEventsResilient({ runId: "missing" })[Symbol.asyncIterator]();
    same((await rejects(stream.next())).code, "RunNotFound", "stream of a missing run");
    reader.close();
    expired.close();
  });

  await check("resilient-stream-cut-twice", async () => {
    const { runId } = await client.launchRun({ workflow: "gate", input: { k: "t2" } });
    await waitStatus(client, runId, "waiting-approval");
    const seen: Array<{ seq: number; event: string; payload: unknown }> = [];
    const reconnects: Array<[number | undefined, number]> = [];
    const it = viaProxy.streamRunEventsResilient(
      { runId, afterSeq: 0 },
      { backoff: { baseMs: 50 }, onReconnect: (e) => reconnects.push([e.afterSeq, seen[seen.length - 1]?.seq ?? -1]) },
    )[Symbol.asyncIterator]();
    const readUntil = async (event: string | undefined) => {
      for (;;) {
        const next = await it.next();
        if (next.done) {
          assert(event === undefined, `stream ended before ${event}`);
          return;
        }
        const frame: GatewayEventFrame<StreamRunEventPayload> = next.value;
        const p = frame.payload;
        if (frame.event === "run.event" && p?.type === "RunEvent") {
          seen.push({ seq: p.seq, event: p.event, payload: p.payload });
          if (p.event === event) {
            return;
          }
        }
      }
    };
    await readUntil("approval.requested");
    await cut();
    await client.submitApproval({ runId, nodeId: "approve", decision: { approved: true } });
    await readUntil("approval.decided");
    await cut();
    await waitStatus(client, runId, "waiting-event");
    await client.submitSignal({ runId, correlationKey: "t2", signalName: "review.done" });
    await readUntil(undefined);
    const run = await client.getRun({ runId });
    same(run.status, "finished", "status");
    same(seen.map((e) => e.seq), Array.from({ length: run.lastSeq ?? 0 }, (_, i) => i + 1), "every seq once, in order");
    same(seen[seen.length - 1].event, "run.completed", "last event");
    same(reconnects.length, 2, "two reconnects");
    for (const [afterSeq, lastYielded] of reconnects) {
      same(afterSeq, lastYielded, "resumed after the last seq yielded");
    }
    const whole: Array<{ seq: number; event: string; payload: unknown }> = [];
    for await (const frame of client.streamRunEventsResilient({ runId, afterSeq: 0 })) {
      const p = frame.payload;
      if (frame.event === "run.event" && p?.type === "RunEvent") {
        whole.push({ seq: p.seq, event: p.event, payload: p.payload });
      }
    }
    same(whole, seen, "the same events as an uncut stream");
    return { events: seen.length, reconnects };
  });

  await check("gap-resync", async () => {
    const gapClient = new SmithersGatewayClient({ baseUrl: args.gapUrl, token: args.token });
    const { runId } = await gapClient.launchRun({ workflow: "many" });
    const last = (await waitStatus(gapClient, runId, "finished")).lastSeq ?? 0;
    assert(last > 4, "a run longer than the window");
    const got: Array<StreamRunEventPayload> = [];
    for await (const frame of gapClient.streamRunEventsResilient({ runId, afterSeq: 0 })) {
      if (frame.payload && frame.payload.type !== "Heartbeat") {
        got.push(frame.payload);
      }
    }
    const gap = got[0];
    assert(gap.type === "GapResync", `first item is ${gap.type}`);
    same([gap.fromSeq, gap.toSeq], [1, last - 3], "gap bounds");
    same((gap.snapshot as { status?: string }).status, "finished", "gap snapshot");
    same(got.slice(1).map((e) => (e.type === "RunEvent" ? e.seq : -1)), [last - 2, last - 1, last], "the window");
    const ended: unknown[] = [];
    for await (const frame of gapClient.streamRunEventsResilient({ runId, afterSeq: last })) {
      ended.push(frame);
    }
    same(ended, [], "an ended run with nothing left ends at once");
    gapClient.close();
  });

  await check("devtools-stream", async () => {
    const { runId } = await client.launchRun({ workflow: "gate", input: { k: "t3" } });
    await waitStatus(client, runId, "waiting-approval");
    const it = client.streamDevTools({ runId })[Symbol.asyncIterator]();
    const first = await it.next();
    assert(!first.done && first.value.payload, "a first event");
    const event = first.value.payload.event;
    assert(event.kind === "snapshot", `first event is ${event.kind}`);
    same(event.snapshot.runId, runId, "snapshot runId");
    await client.submitApproval({ runId, nodeId: "approve", decision: { approved: true } });
    const second = await it.next();
    assert(!second.done && second.value.payload, "a second event");
    const next = second.value.payload.event;
    const seq = next.kind === "delta" ? next.delta.seq : next.snapshot.frameNo;
    assert(seq > event.snapshot.frameNo, "the next frame");
    await it.return(undefined);
  });

  client.close();
  viaProxy.close();
  assert(client.closed, "closed");
}

async function readArgs(path: string | undefined): Promise<string> {
  assert(path, "usage: ts_client_check.ts ARGS.json");
  // Bun and Node both have node:fs; imported lazily so the client itself
  // stays free of runtime imports.
  const fs = (await import("node:fs" as string)) as { readFileSync(p: string, enc: string): string };
  return fs.readFileSync(path, "utf8");
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`ts_client_check: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
