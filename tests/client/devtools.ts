// The DevTools tree through the upstream's published client, against a real
// server: what the client's own mapping (snapshotToGatewayRunNode) draws
// from Anvil's snapshots, over HTTP and over the WebSocket stream with
// deltas applied.
//
//   bun tests/client/devtools.ts URL TOKEN [--keep-going]
//   ANVIL_URL=... ANVIL_TOKEN=... bun tests/client/devtools.ts
//
// Uses only the public API of @smithers-orchestrator/gateway-client (the
// package's root export) and the types of @smithers-orchestrator/protocol,
// the way a user moving from the upstream would. The server must host the
// workflow `dt` that tests/integration/test_upstream_client.py writes:
//   sequence
//     build    task, `run:` (retries: 1)
//     parallel
//       notes    task, static `output:`
//       approve  approval
//       review   signal `review.done`
//     ship     task, static `output:`
// NODES below must stay in step with it.
//
// Prints one JSON line per check on stdout ({"check", "ok", ...}). Stops at
// the first failure with exit status 1 and a "devtools: FAIL ..." line on
// stderr; --keep-going runs every check whose inputs exist and exits 1 at
// the end if anything failed. Exit status 2 is a usage error.

import {
  flattenGatewayRunNode,
  SmithersGatewayClient,
  snapshotToGatewayRunNode,
  type GatewayRunNode,
} from "@smithers-orchestrator/gateway-client";
import type { DevToolsDeltaOp, DevToolsEvent, DevToolsNode, DevToolsSnapshot } from "@smithers-orchestrator/protocol";

const WORKFLOW = "dt";
const WAIT_MS = 20_000; // bound on each wait for a run state or a stream event
const POLL_MS = 50;
const CALL_MS = 15_000; // bound on any single call

// Every row the client's mapping must draw: its name and kind, by the
// logical id the client gives it (task.nodeId; containers have none, so
// they are found by name). `parent` is the parent row's name.
type Row = { name: string; kind: string; parent?: string };
const NODES: Row[] = [
  { name: WORKFLOW, kind: "workflow" },
  // The client's kind for a sequence is its neutral default, "compute"; a
  // parallel has its own. Neither has a task: their status is the client's
  // roll-up of their children, as for the upstream's containers.
  { name: "sequence", kind: "compute", parent: WORKFLOW },
  { name: "build", kind: "compute", parent: "sequence" },
  { name: "parallel", kind: "parallel", parent: "sequence" },
  { name: "notes", kind: "compute", parent: "parallel" },
  { name: "approve", kind: "approval", parent: "parallel" },
  { name: "review", kind: "signal", parent: "parallel" },
  { name: "ship", kind: "compute", parent: "sequence" },
];

// The client's status of every row, by name, at each point the script
// checks. "waiting" is what the client shows for a waiting approval or
// signal; "queued" for a node that has not started.
const WAITING: Record<string, string> = {
  [WORKFLOW]: "waiting", sequence: "waiting", build: "ok", parallel: "waiting",
  notes: "ok", approve: "waiting", review: "waiting", ship: "queued",
};
const SIGNALLED: Record<string, string> = { ...WAITING, review: "ok" };
const FINISHED: Record<string, string> = Object.fromEntries(NODES.map((n) => [n.name, "ok"]));

// ---------------------------------------------------------------------------
// arguments

function usage(message: string): never {
  process.stderr.write(
    `devtools: ${message}\n` +
      "usage: bun tests/client/devtools.ts URL TOKEN [--keep-going]\n" +
      "       (or ANVIL_URL and ANVIL_TOKEN in the environment)\n",
  );
  process.exit(2);
}

const argv = process.argv.slice(2);
const keepGoing = argv.includes("--keep-going");
const positional = argv.filter((a) => a !== "--keep-going");
if (positional.some((a) => a.startsWith("--"))) usage(`unknown option ${positional.find((a) => a.startsWith("--"))}`);
if (positional.length > 2) usage("too many arguments");
const baseUrl = positional[0] ?? process.env.ANVIL_URL;
const token = positional[1] ?? process.env.ANVIL_TOKEN;
if (!baseUrl) usage("no server URL");
if (!token) usage("no token");
if (!/^https?:\/\//.test(baseUrl)) usage(`not an http(s) URL: ${baseUrl}`);

const client = new SmithersGatewayClient({
  baseUrl,
  token,
  client: { id: "anvil-devtools-test", platform: "bun" },
});

// ---------------------------------------------------------------------------
// checks

class CheckFailure extends Error {}

function fail(message: string): never {
  throw new CheckFailure(message);
}

function expect(cond: unknown, message: string): asserts cond {
  if (!cond) fail(message);
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 800 ? text.slice(0, 800) + "..." : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `p`, or a CheckFailure if it does not settle within `ms`. */
async function bounded<T>(what: string, p: Promise<T>, ms = CALL_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailure(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A call that must succeed: any rejection becomes a CheckFailure saying why. */
async function call<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await bounded(what, p);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure(`${what} failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll getRun until `ready(run)`. */
async function waitRun(runId: string, what: string, ready: (run: Record<string, unknown>) => boolean) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const run = await call(`getRun(${runId})`, client.getRun({ runId }));
    expect(isPlainObject(run), `getRun payload is not an object: ${show(run)}`);
    if (ready(run)) return run;
    if (Date.now() > deadline) fail(`run ${runId} not ${what} within ${WAIT_MS} ms; last getRun: ${show(run)}`);
    await sleep(POLL_MS);
  }
}

function nodeState(run: Record<string, unknown>, nodeId: string): unknown {
  const nodes = Array.isArray(run.nodes) ? run.nodes : [];
  return (nodes.find((n) => isPlainObject(n) && n.nodeId === nodeId) as Record<string, unknown> | undefined)?.state;
}

// ---------------------------------------------------------------------------
// the tree, as the protocol and the client see it

/** The protocol's shape, checked on every node (the client's mapping would
 * silently draw a malformed node as a nameless "compute" node). */
function checkProtocolTree(node: DevToolsNode, depth: number, ids: Set<number>, where = "root") {
  expect(isPlainObject(node), `${where} is not an object: ${show(node)}`);
  expect(Number.isInteger(node.id) && node.id >= 0, `${where}.id is not a non-negative integer: ${show(node)}`);
  expect(!ids.has(node.id), `${where}.id ${node.id} is not unique`);
  ids.add(node.id);
  expect(typeof node.type === "string" && typeof node.name === "string", `${where}: type/name: ${show(node)}`);
  expect(isPlainObject(node.props), `${where}.props is not an object: ${show(node)}`);
  expect(node.depth === depth, `${where}.depth is ${show(node.depth)}, expected ${depth}`);
  expect(Array.isArray(node.children), `${where}.children is not an array: ${show(node)}`);
  if (node.task !== undefined) {
    const t = node.task;
    expect(typeof t.nodeId === "string" && typeof t.kind === "string", `${where}.task: ${show(t)}`);
    expect(t.iteration === 0 && typeof t.state === "string", `${where}.task: ${show(t)}`);
  }
  node.children.forEach((c, i) => checkProtocolTree(c, depth + 1, ids, `${where}.children[${i}]`));
}

function checkSnapshot(s: unknown, runId: string): DevToolsSnapshot {
  expect(isPlainObject(s), `snapshot is not an object: ${show(s)}`);
  expect(s.version === 1 && s.runId === runId, `version/runId: ${show(s)}`);
  expect(Number.isInteger(s.frameNo) && s.seq === s.frameNo, `frameNo/seq: ${show(s)}`);
  const rs = s.runState;
  expect(isPlainObject(rs) && rs.runId === runId && typeof rs.state === "string", `runState: ${show(rs)}`);
  expect(typeof rs.computedAt === "string" && !Number.isNaN(Date.parse(rs.computedAt)), `runState.computedAt: ${show(rs)}`);
  checkProtocolTree(s.root as DevToolsNode, 0, new Set());
  return s as unknown as DevToolsSnapshot;
}

/** The client's own rows for a snapshot, checked against NODES and `status`;
 * returns {name: status} for the check's line. */
function checkClientRows(snapshot: DevToolsSnapshot, status: Record<string, string>, what: string) {
  const rows = flattenGatewayRunNode(snapshotToGatewayRunNode(snapshot));
  expect(rows.length === NODES.length, `${what}: the client drew ${rows.length} rows, expected ${NODES.length}: ${show(rows)}`);
  const byKey = new Map(rows.map((r) => [r.key, r] as const));
  const seen: Record<string, string> = {};
  for (const want of NODES) {
    const row = rows.find((r) => r.name === want.name) as GatewayRunNode | undefined;
    expect(row, `${what}: no row named ${show(want.name)}: ${show(rows.map((r) => r.name))}`);
    expect(row.kind === want.kind, `${what}: ${want.name} drawn as kind ${show(row.kind)}, expected ${want.kind}`);
    expect(
      row.status === status[want.name],
      `${what}: ${want.name} drawn ${show(row.status)}, expected ${status[want.name]}: ${show(row)}`,
    );
    const parent = row.parentId === undefined ? undefined : byKey.get(row.parentId)?.name;
    expect(parent === want.parent, `${what}: ${want.name}'s parent is ${show(parent)}, expected ${show(want.parent)}`);
    // Logical ids are what the RPCs take (getNodeOutput, submitApproval):
    // a node's own id, not the tree's number.
    if (want.kind !== "workflow" && want.name !== "sequence" && want.name !== "parallel") {
      expect(row.id === want.name && row.iteration === 0, `${what}: ${want.name}: id/iteration ${show(row)}`);
    }
    seen[want.name] = row.status;
  }
  const build = rows.find((r) => r.name === "build")!;
  expect(build.attempt === 1 && build.maxAttempts === 2, `${what}: build attempt/maxAttempts: ${show(build)}`);
  return seen;
}

/** Apply a delta's ops as the protocol defines them (DevToolsDeltaOp): nodes
 * by numeric id, props and task replaced whole. Throws on an op that does
 * not fit the tree. */
function applyOps(root: DevToolsNode, ops: DevToolsDeltaOp[]): DevToolsNode {
  let tree: DevToolsNode = structuredClone(root);
  const find = (id: number): { node: DevToolsNode; parent?: DevToolsNode } => {
    const walk = (n: DevToolsNode, parent?: DevToolsNode): { node: DevToolsNode; parent?: DevToolsNode } | undefined => {
      if (n.id === id) return { node: n, parent };
      for (const c of n.children) {
        const hit = walk(c, n);
        if (hit) return hit;
      }
      return undefined;
    };
    const hit = walk(tree);
    if (!hit) fail(`delta op names node ${id}, which the tree does not have`);
    return hit;
  };
  for (const op of ops) {
    switch (op.op) {
      case "replaceRoot":
        tree = structuredClone(op.node);
        break;
      case "removeNode": {
        const { node, parent } = find(op.id);
        expect(parent, "removeNode of the root");
        parent.children.splice(parent.children.indexOf(node), 1);
        break;
      }
      case "addNode": {
        const { node } = find(op.parentId);
        expect(op.index >= 0 && op.index <= node.children.length, `addNode index ${op.index} out of range`);
        node.children.splice(op.index, 0, structuredClone(op.node));
        break;
      }
      case "updateProps":
        find(op.id).node.props = structuredClone(op.props);
        break;
      case "updateTask": {
        const { node } = find(op.id);
        if (op.task === undefined) delete node.task;
        else node.task = structuredClone(op.task);
        break;
      }
      default:
        fail(`unknown delta op ${show(op)}`);
    }
  }
  return tree;
}

// ---------------------------------------------------------------------------
// the stream: client.streamDevTools in the background, its events kept

type StreamState = { events: DevToolsEvent[]; error?: unknown; done: boolean; abort: AbortController };

function openStream(runId: string): StreamState {
  const st: StreamState = { events: [], done: false, abort: new AbortController() };
  (async () => {
    try {
      for await (const frame of client.streamDevTools({ runId }, { signal: st.abort.signal })) {
        if (frame.event === "devtools.error") throw new Error(`devtools.error ${show(frame.payload)}`);
        // The upstream's envelope: {streamId, runId, event: DevToolsEvent}.
        const p = frame.payload;
        if (!isPlainObject(p) || p.runId !== runId || !isPlainObject(p.event)) {
          throw new Error(`devtools.event payload is not {streamId, runId, event}: ${show(p)}`);
        }
        st.events.push(p.event as DevToolsEvent);
      }
    } catch (e) {
      if (!st.abort.signal.aborted) st.error = e;
    } finally {
      st.done = true;
    }
  })();
  return st;
}

/** Until the stream holds `n` events. */
async function waitEvents(st: StreamState, n: number, what: string) {
  const deadline = Date.now() + WAIT_MS;
  while (st.events.length < n) {
    if (st.error) fail(`${what}: the stream failed: ${st.error instanceof Error ? st.error.message : String(st.error)}`);
    if (st.done) fail(`${what}: the stream ended after ${st.events.length} events`);
    if (Date.now() > deadline) fail(`${what}: ${st.events.length} events within ${WAIT_MS} ms, expected ${n}`);
    await sleep(POLL_MS);
  }
}

/** `events` (those after `snap`) applied to `snap`: the snapshot a client
 * following the stream holds. */
function follow(snap: DevToolsSnapshot, events: DevToolsEvent[]): DevToolsSnapshot {
  let cur = snap;
  for (const ev of events) {
    if (ev.kind === "snapshot") {
      expect(ev.snapshot.seq === cur.seq + 1, `snapshot seq ${ev.snapshot.seq} after ${cur.seq}`);
      cur = checkSnapshot(ev.snapshot, snap.runId);
    } else {
      const d = ev.delta;
      expect(d.version === 1 && d.baseSeq === cur.seq && d.seq === cur.seq + 1, `delta ${show(d)} after ${cur.seq}`);
      const root = applyOps(cur.root, d.ops);
      checkProtocolTree(root, 0, new Set());
      // A delta carries no runState: the client keeps the snapshot's
      // (Anvil sends a snapshot whenever the run status changes).
      cur = { ...cur, frameNo: d.seq, seq: d.seq, root };
    }
  }
  return cur;
}

// ---------------------------------------------------------------------------
// the steps, in order; `needs` names the results a step uses

type Ctx = {
  runId?: string;
  waiting?: boolean;
  http?: DevToolsSnapshot;
  stream?: StreamState;
  streamed?: DevToolsSnapshot;
  signalled?: DevToolsSnapshot;
};
type Step = { name: string; needs: (keyof Ctx)[]; run: (ctx: Ctx) => Promise<Record<string, unknown>> };

const steps: Step[] = [
  {
    name: "launchRun",
    needs: [],
    run: async (ctx) => {
      const r = await call("launchRun", client.launchRun({ workflow: WORKFLOW, input: {} }));
      expect(isPlainObject(r) && typeof r.runId === "string", `no runId: ${show(r)}`);
      ctx.runId = r.runId;
      return { runId: r.runId };
    },
  },
  {
    name: "getRun.waiting",
    needs: ["runId"],
    run: async (ctx) => {
      // build and notes done, approve and review waiting: nothing else moves.
      const run = await waitRun(ctx.runId!, "waiting on its approval and its signal", (r) =>
        r.status === "waiting-approval" && nodeState(r, "review") === "waiting" && nodeState(r, "notes") === "finished");
      ctx.waiting = true;
      return { status: run.status, frameNo: run.frameNo };
    },
  },
  {
    name: "getDevToolsSnapshot.mapped",
    needs: ["waiting"],
    run: async (ctx) => {
      const s = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId: ctx.runId! })), ctx.runId!);
      expect(s.runState?.state === "waiting-approval", `runState: ${show(s.runState)}`);
      ctx.http = s;
      return { frameNo: s.frameNo, rows: checkClientRows(s, WAITING, "HTTP snapshot") };
    },
  },
  {
    name: "streamDevTools.snapshot",
    needs: ["http"],
    run: async (ctx) => {
      ctx.stream = openStream(ctx.runId!);
      await waitEvents(ctx.stream, 1, "the first event");
      const ev = ctx.stream.events[0];
      expect(ev.version === 1 && ev.kind === "snapshot", `the first event is not a snapshot: ${show(ev)}`);
      const s = checkSnapshot(ev.snapshot, ctx.runId!);
      expect(show(s) === show(ctx.http), `the stream's snapshot differs from getDevToolsSnapshot's:\n  ${show(s)}\n  ${show(ctx.http)}`);
      ctx.streamed = s;
      return { frameNo: s.frameNo, rows: checkClientRows(s, WAITING, "streamed snapshot") };
    },
  },
  {
    name: "streamDevTools.delta",
    needs: ["streamed"],
    run: async (ctx) => {
      const r = await call(
        "submitSignal",
        client.submitSignal({ runId: ctx.runId!, signalName: "review.done", correlationKey: "any", payload: { ok: true } }),
      );
      expect(isPlainObject(r) && r.delivered === true, `the signal was not delivered: ${show(r)}`);
      // The signal finishes `review`; the run still waits for `approve`, so
      // its status stays and the change comes as a delta.
      await waitEvents(ctx.stream!, 2, "the signal's event");
      const ev = ctx.stream!.events[1];
      expect(ev.kind === "delta", `the signal's frame came as ${show(ev)}, expected a delta`);
      const ids = new Set(ev.delta.ops.map((op) => ("id" in op ? op.id : undefined)));
      const review = flattenNodes(ctx.streamed!.root).find((n) => n.task?.nodeId === "review")!;
      expect(ids.size === 1 && ids.has(review.id), `the delta changes ${show([...ids])}, expected only review's ${review.id}`);
      const s = follow(ctx.streamed!, [ev]);
      ctx.signalled = s;
      const http = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId: ctx.runId!, frameNo: s.seq })), ctx.runId!);
      expect(show(s.root) === show(http.root), `the delta applied gives\n  ${show(s.root)}\nnot frame ${s.seq}'s\n  ${show(http.root)}`);
      return { ops: ev.delta.ops.map((op) => op.op), rows: checkClientRows(s, SIGNALLED, "snapshot + delta") };
    },
  },
  {
    name: "streamDevTools.finished",
    needs: ["signalled"],
    run: async (ctx) => {
      await call("submitApproval", client.submitApproval({ runId: ctx.runId!, nodeId: "approve", decision: { approved: true } }));
      const run = await waitRun(ctx.runId!, "finished", (r) => r.status === "finished" || r.status === "failed");
      expect(run.status === "finished", `run ended ${show(run.status)}`);
      const last = run.frameNo as number;
      await waitEvents(ctx.stream!, 2 + (last - ctx.signalled!.seq), "the run's remaining frames");
      const s = follow(ctx.signalled!, ctx.stream!.events.slice(2));
      expect(s.seq === last, `the stream ended at frame ${s.seq}, the run at ${last}`);
      expect(s.runState?.state === "succeeded", `runState: ${show(s.runState)}`);
      const http = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId: ctx.runId! })), ctx.runId!);
      expect(show(s.root) === show(http.root), `the stream's tree is not getDevToolsSnapshot's:\n  ${show(s.root)}\n  ${show(http.root)}`);
      const kinds = ctx.stream!.events.map((e) => e.kind);
      return { kinds, rows: checkClientRows(s, FINISHED, "followed to the end") };
    },
  },
];

function flattenNodes(n: DevToolsNode): DevToolsNode[] {
  return [n, ...n.children.flatMap(flattenNodes)];
}

// ---------------------------------------------------------------------------

function emit(line: Record<string, unknown>) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

async function main() {
  const ctx: Ctx = {};
  const failed: string[] = [];
  try {
    for (const step of steps) {
      const missing = step.needs.filter((k) => ctx[k] === undefined);
      if (missing.length > 0) {
        emit({ check: step.name, ok: null, skipped: `needs ${missing.join(", ")} from a failed check` });
        continue;
      }
      try {
        emit({ check: step.name, ok: true, ...(await step.run(ctx)) });
      } catch (e) {
        const why = e instanceof CheckFailure ? e.message : `unexpected ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
        emit({ check: step.name, ok: false, error: why });
        process.stderr.write(`devtools: FAIL ${step.name}: ${why}\n`);
        failed.push(step.name);
        if (!keepGoing) break;
      }
    }
  } finally {
    ctx.stream?.abort.abort();
    client.close();
  }
  if (failed.length > 0) {
    process.stderr.write(`devtools: ${failed.length} check(s) failed: ${failed.join(", ")}\n`);
    process.exit(1);
  }
  process.stderr.write(`devtools: all ${steps.length} checks passed against ${baseUrl}\n`);
}

await main();
