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
// Checks run and report as tests/client/check.ts says: one JSON line each
// on stdout, "devtools: FAIL <check>: <why>" on stderr and exit 1 at the
// first failure (with --keep-going, at the end), exit 2 for a usage error.

import {
  flattenGatewayRunNode,
  SmithersGatewayClient,
  snapshotToGatewayRunNode,
  type GatewayRunNode,
} from "@smithers-orchestrator/gateway-client";
import type { DevToolsDeltaOp, DevToolsEvent, DevToolsNode, DevToolsSnapshot } from "@smithers-orchestrator/protocol";

import { Checks, POLL_MS, WAIT_MS, call, expect, fail, isPlainObject, parseArgs, show, sleep, until } from "./check.ts";

const WORKFLOW = "dt";

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

const args = parseArgs("devtools");
const checks = new Checks("devtools", args.keepGoing);
const client = new SmithersGatewayClient({
  baseUrl: args.baseUrl,
  token: args.token,
  client: { id: "anvil-devtools-test", platform: "bun" },
});

/** Poll getRun until `ready(run)`. */
function waitRun(runId: string, what: string, ready: (run: Record<string, unknown>) => boolean) {
  return until(`run ${runId} ${what}`, async () => {
    const run = await call(`getRun(${runId})`, client.getRun({ runId }));
    expect(isPlainObject(run), `getRun payload is not an object: ${show(run)}`);
    return run;
  }, ready);
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
// the checks, in order

function flattenNodes(n: DevToolsNode): DevToolsNode[] {
  return [n, ...n.children.flatMap(flattenNodes)];
}

async function main() {
  let runId = "";
  let http: DevToolsSnapshot | undefined;
  let stream: StreamState | undefined;
  let streamed: DevToolsSnapshot | undefined;
  let signalled: DevToolsSnapshot | undefined;
  try {
    await checks.run("launchRun", async () => {
      const r = await call("launchRun", client.launchRun({ workflow: WORKFLOW, input: {} }));
      expect(isPlainObject(r) && typeof r.runId === "string", `no runId: ${show(r)}`);
      runId = r.runId;
      return { runId };
    });

    await checks.run("getRun.waiting", async () => {
      // build and notes done, approve and review waiting: nothing else moves.
      const run = await waitRun(runId, "waiting on its approval and its signal", (r) =>
        r.status === "waiting-approval" && nodeState(r, "review") === "waiting" && nodeState(r, "notes") === "finished");
      return { status: run.status, frameNo: run.frameNo };
    }, ["launchRun"]);

    await checks.run("getDevToolsSnapshot.mapped", async () => {
      const s = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId })), runId);
      expect(s.runState?.state === "waiting-approval", `runState: ${show(s.runState)}`);
      http = s;
      return { frameNo: s.frameNo, rows: checkClientRows(s, WAITING, "HTTP snapshot") };
    }, ["getRun.waiting"]);

    await checks.run("streamDevTools.snapshot", async () => {
      stream = openStream(runId);
      await waitEvents(stream, 1, "the first event");
      const ev = stream.events[0];
      expect(ev.version === 1 && ev.kind === "snapshot", `the first event is not a snapshot: ${show(ev)}`);
      const s = checkSnapshot(ev.snapshot, runId);
      expect(show(s) === show(http), `the stream's snapshot differs from getDevToolsSnapshot's:\n  ${show(s)}\n  ${show(http)}`);
      streamed = s;
      return { frameNo: s.frameNo, rows: checkClientRows(s, WAITING, "streamed snapshot") };
    }, ["getDevToolsSnapshot.mapped"]);

    await checks.run("streamDevTools.delta", async () => {
      const r = await call(
        "submitSignal",
        client.submitSignal({ runId, signalName: "review.done", correlationKey: "any", payload: { ok: true } }),
      );
      expect(isPlainObject(r) && r.delivered === true, `the signal was not delivered: ${show(r)}`);
      // The signal finishes `review`; the run still waits for `approve`, so
      // its status stays and the change comes as a delta.
      await waitEvents(stream!, 2, "the signal's event");
      const ev = stream!.events[1];
      expect(ev.kind === "delta", `the signal's frame came as ${show(ev)}, expected a delta`);
      const ids = new Set(ev.delta.ops.map((op) => ("id" in op ? op.id : undefined)));
      const review = flattenNodes(streamed!.root).find((n) => n.task?.nodeId === "review")!;
      expect(ids.size === 1 && ids.has(review.id), `the delta changes ${show([...ids])}, expected only review's ${review.id}`);
      const s = follow(streamed!, [ev]);
      const at = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId, frameNo: s.seq })), runId);
      expect(show(s.root) === show(at.root), `the delta applied gives\n  ${show(s.root)}\nnot frame ${s.seq}'s\n  ${show(at.root)}`);
      signalled = s;
      return { ops: ev.delta.ops.map((op) => op.op), rows: checkClientRows(s, SIGNALLED, "snapshot + delta") };
    }, ["streamDevTools.snapshot"]);

    await checks.run("streamDevTools.finished", async () => {
      await call("submitApproval", client.submitApproval({ runId, nodeId: "approve", decision: { approved: true } }));
      const run = await waitRun(runId, "ended", (r) => r.status === "finished" || r.status === "failed");
      expect(run.status === "finished", `run ended ${show(run.status)}`);
      const last = run.frameNo as number;
      await waitEvents(stream!, 2 + (last - signalled!.seq), "the run's remaining frames");
      const s = follow(signalled!, stream!.events.slice(2));
      expect(s.seq === last, `the stream ended at frame ${s.seq}, the run at ${last}`);
      expect(s.runState?.state === "succeeded", `runState: ${show(s.runState)}`);
      const at = checkSnapshot(await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId })), runId);
      expect(show(s.root) === show(at.root), `the stream's tree is not getDevToolsSnapshot's:\n  ${show(s.root)}\n  ${show(at.root)}`);
      return { kinds: stream!.events.map((e) => e.kind), rows: checkClientRows(s, FINISHED, "followed to the end") };
    }, ["streamDevTools.delta"]);
  } finally {
    stream?.abort.abort();
    client.close();
  }
  checks.finish();
}

await main();
