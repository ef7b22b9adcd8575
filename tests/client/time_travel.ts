// Time travel through the upstream's published client, against a real server.
//
//   bun tests/client/time_travel.ts URL TOKEN [--keep-going]
//   ANVIL_URL=... ANVIL_TOKEN=... bun tests/client/time_travel.ts
//
// Uses only the public API of @smithers-orchestrator/gateway-client (the
// package's root export), the way a user moving from the upstream would.
// The server must host the workflow `tt` that tests/integration/
// test_upstream_client.py writes: a sequence of three tasks run in the run's
// workspace:
//   one    writes a.txt ("alpha\nbeta\ngamma\n") and b.txt ("bee\n")
//   two    rewrites a.txt ("alpha\nBETA\ngamma\n") and deletes b.txt
//   three  writes the binary c.bin ("C\0B\0I\0N\n")
// EXPECTED below must stay in step with that workflow.
//
// Prints one JSON line per check on stdout ({"check", "ok", ...}). Stops at
// the first failure with exit status 1 and a "time_travel: FAIL ..." line on
// stderr. With --keep-going it runs every check whose inputs exist (a check
// that needs a failed one is reported as skipped) and exits 1 at the end if
// anything failed: a list of everything that does not work yet. Exit status
// 2 is a usage error.

import { GatewayRpcError, SmithersGatewayClient } from "@smithers-orchestrator/gateway-client";

import {
  CheckFailure, POLL_MS, WAIT_MS, bounded, call, describeError, expect, fail, isCount, isPlainObject, parseArgs,
  show, sleep,
} from "./check.ts";

const WORKFLOW = "tt";
const NODES = ["one", "two", "three"] as const;
type NodeId = (typeof NODES)[number];

// What each task changes in the workspace. `status` is the kind of change;
// the server may spell it git-style (see STATUS_SPELLINGS).
type Change = "added" | "modified" | "deleted";
type ExpectedFile = { path: string; change: Change; binary: boolean; patchHas?: string[] };
const EXPECTED: Record<NodeId, { files: ExpectedFile[]; insertions?: number; deletions?: number }> = {
  one: {
    files: [
      { path: "a.txt", change: "added", binary: false, patchHas: ["+alpha", "+beta", "+gamma"] },
      { path: "b.txt", change: "added", binary: false, patchHas: ["+bee"] },
    ],
    insertions: 4,
    deletions: 0,
  },
  two: {
    files: [
      { path: "a.txt", change: "modified", binary: false, patchHas: ["-beta", "+BETA"] },
      { path: "b.txt", change: "deleted", binary: false, patchHas: ["-bee"] },
    ],
    insertions: 1,
    deletions: 2,
  },
  // A binary file has no lines: its insertions/deletions are not pinned here.
  three: { files: [{ path: "c.bin", change: "added", binary: true }] },
};
const STATUS_SPELLINGS: Record<Change, string[]> = {
  added: ["added", "add", "a", "new", "created"],
  modified: ["modified", "modify", "m", "changed"],
  deleted: ["deleted", "delete", "d", "removed"],
};

// ---------------------------------------------------------------------------
// arguments

const { baseUrl, token, keepGoing } = parseArgs("time_travel");

// ---------------------------------------------------------------------------
// the client, as a user builds it: `rpc()` and the named methods are
// POST {baseUrl}/v1/rpc/{method} with `authorization: Bearer {token}`.
// (The option is `baseUrl`; any other name is ignored and the client would
// talk to its default, http://127.0.0.1:7331.)

const client = new SmithersGatewayClient({
  baseUrl,
  token,
  client: { id: "anvil-time-travel-test", platform: "bun" },
});

// ---------------------------------------------------------------------------
// checks


/** Poll getRun until `finished`; fails at once on another terminal status. */
async function waitFinished(runId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + WAIT_MS;
  let last: Record<string, unknown> | undefined;
  for (;;) {
    const run = await call(`getRun(${runId})`, client.getRun({ runId }));
    expect(isPlainObject(run), `getRun payload is not an object: ${show(run)}`);
    last = run;
    if (run.status === "finished") return run;
    if (run.status === "failed" || run.status === "cancelled") {
      fail(`run ${runId} ended ${String(run.status)}, not finished: ${show(run)}`);
    }
    if (Date.now() > deadline) {
      fail(`run ${runId} not finished within ${WAIT_MS} ms; last getRun: ${show(last)}`);
    }
    await sleep(POLL_MS);
  }
}

type DiffFile = { path: string; status: string; binary: boolean; patch: string };
type Diff = { summary: { filesChanged: number; insertions: number; deletions: number }; files: DiffFile[] };

/** getNodeDiff for one node, checked for shape and against EXPECTED;
 * returns it with files sorted by path. */
async function nodeDiff(runId: string, nodeId: NodeId): Promise<Diff> {
  const d = await call(`getNodeDiff(${nodeId})`, client.getNodeDiff({ runId, nodeId }));
  expect(isPlainObject(d), `payload is not an object: ${show(d)}`);
  const s = d.summary;
  expect(isPlainObject(s), `summary is not an object: ${show(d)}`);
  for (const k of ["filesChanged", "insertions", "deletions"] as const) {
    expect(isCount(s[k]), `summary.${k} is not a non-negative integer: ${show(s)}`);
  }
  expect(Array.isArray(d.files), `files is not an array: ${show(d)}`);
  const files: DiffFile[] = [];
  for (const f of d.files as unknown[]) {
    expect(isPlainObject(f), `a files entry is not an object: ${show(f)}`);
    expect(typeof f.path === "string" && f.path !== "", `files[].path is not a non-empty string: ${show(f)}`);
    expect(typeof f.status === "string" && f.status !== "", `files[].status is not a non-empty string: ${show(f)}`);
    expect(typeof f.binary === "boolean", `files[].binary is not a boolean: ${show(f)}`);
    expect(typeof f.patch === "string", `files[].patch is not a string: ${show(f)}`);
    files.push({ path: f.path, status: f.status, binary: f.binary, patch: f.patch });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const want = EXPECTED[nodeId];
  const got = files.map((f) => f.path);
  const wantPaths = want.files.map((f) => f.path).sort();
  expect(show(got) === show(wantPaths), `files are ${show(got)}, the task changed ${show(wantPaths)}`);
  expect(s.filesChanged === files.length, `summary.filesChanged is ${s.filesChanged} with ${files.length} files`);
  for (const w of want.files) {
    const f = files.find((x) => x.path === w.path)!;
    expect(
      STATUS_SPELLINGS[w.change].includes(f.status.toLowerCase()),
      `${w.path}: status ${show(f.status)}, expected ${w.change} (one of ${show(STATUS_SPELLINGS[w.change])})`,
    );
    expect(f.binary === w.binary, `${w.path}: binary is ${f.binary}, expected ${w.binary}`);
    if (!w.binary) expect(f.patch !== "", `${w.path}: empty patch for a text change`);
    for (const line of w.patchHas ?? []) {
      expect(
        f.patch.split("\n").includes(line),
        `${w.path}: patch has no line ${show(line)}: ${show(f.patch)}`,
      );
    }
  }
  if (want.insertions !== undefined) {
    expect(s.insertions === want.insertions, `summary.insertions is ${s.insertions}, expected ${want.insertions}`);
  }
  if (want.deletions !== undefined) {
    expect(s.deletions === want.deletions, `summary.deletions is ${s.deletions}, expected ${want.deletions}`);
  }
  return {
    summary: { filesChanged: s.filesChanged as number, insertions: s.insertions as number, deletions: s.deletions as number },
    files,
  };
}

function diffLine(d: Diff) {
  return { summary: d.summary, files: d.files.map((f) => ({ path: f.path, status: f.status, binary: f.binary })) };
}

/** The call must reject with the client's GatewayRpcError carrying `code`. */
async function expectRpcError(what: string, p: Promise<unknown>, code: string, status: number) {
  let value: unknown;
  try {
    value = await bounded(what, p);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    if (!(e instanceof GatewayRpcError)) fail(`${what} rejected with ${describeError(e)}, not a GatewayRpcError`);
    expect(e.code === code, `${what} rejected with ${describeError(e)}; expected code ${code}`);
    expect(e.status === status, `${what}: HTTP status ${e.status}, expected ${status}`);
    return { code: e.code, status: e.status, method: e.method, message: e.message };
  }
  fail(`${what} resolved with ${show(value)}; expected a ${code} error`);
}

// ---------------------------------------------------------------------------
// the steps, in order; `needs` names the results a step uses

type Ctx = {
  runId?: string;
  firstFinish?: Record<string, unknown>;
  diffs?: Partial<Record<NodeId, Diff>>;
  rewound?: boolean;
  resumed?: boolean;
};
type Step = { name: string; needs: (keyof Ctx)[]; run: (ctx: Ctx) => Promise<Record<string, unknown>> };

const steps: Step[] = [
  {
    name: "getRun.RunNotFound",
    needs: [],
    run: async () => ({ error: await expectRpcError("getRun(no-such-run)", client.getRun({ runId: "no-such-run" }), "RunNotFound", 404) }),
  },
  {
    name: "launchRun",
    needs: [],
    run: async (ctx) => {
      const r = await call("launchRun", client.launchRun({ workflow: WORKFLOW, input: {} }));
      expect(isPlainObject(r), `payload is not an object: ${show(r)}`);
      expect(typeof r.runId === "string" && r.runId !== "", `no runId: ${show(r)}`);
      expect(r.workflow === WORKFLOW, `workflow is ${show(r.workflow)}: ${show(r)}`);
      ctx.runId = r.runId;
      return { runId: r.runId };
    },
  },
  {
    name: "getRun.finished",
    needs: ["runId"],
    run: async (ctx) => {
      const run = await waitFinished(ctx.runId!);
      ctx.firstFinish = run;
      return { runId: ctx.runId, status: run.status, frameNo: run.frameNo };
    },
  },
  ...NODES.map(
    (nodeId): Step => ({
      name: `getNodeDiff.${nodeId}`,
      needs: ["firstFinish"],
      run: async (ctx) => {
        const d = await nodeDiff(ctx.runId!, nodeId);
        (ctx.diffs ??= {})[nodeId] = d;
        return { nodeId, ...diffLine(d) };
      },
    }),
  ),
  {
    name: "getDevToolsSnapshot",
    needs: ["firstFinish"],
    run: async (ctx) => {
      const s = await call("getDevToolsSnapshot", client.getDevToolsSnapshot({ runId: ctx.runId! }));
      expect(isPlainObject(s), `payload is not an object: ${show(s)}`);
      expect(s.version === 1, `version is ${show(s.version)}, expected 1`);
      expect(s.runId === ctx.runId, `runId is ${show(s.runId)}, expected ${ctx.runId}`);
      expect(isCount(s.frameNo), `frameNo is not a non-negative integer: ${show(s.frameNo)}`);
      expect(isPlainObject(s.root), `root is not an object: ${show(s.root)}`);
      return { version: s.version, runId: s.runId, frameNo: s.frameNo, rootKeys: Object.keys(s.root).sort() };
    },
  },
  {
    name: "rewindRun",
    needs: ["firstFinish"],
    run: async (ctx) => {
      const j = await call("rewindRun", client.rewindRun({ runId: ctx.runId!, frameNo: 1, confirm: true }));
      expect(isPlainObject(j), `payload is not an object: ${show(j)}`);
      expect(j.ok === true, `ok is ${show(j.ok)}: ${show(j)}`);
      expect(j.newFrameNo === 1, `newFrameNo is ${show(j.newFrameNo)}, expected 1: ${show(j)}`);
      expect(isCount(j.revertedSandboxes), `revertedSandboxes is not a count: ${show(j)}`);
      expect(isCount(j.deletedFrames) && j.deletedFrames > 0, `deletedFrames is not > 0: ${show(j)}`);
      expect(isCount(j.deletedAttempts) && j.deletedAttempts > 0, `deletedAttempts is not > 0: ${show(j)}`);
      expect(isCount(j.invalidatedDiffs), `invalidatedDiffs is not a count: ${show(j)}`);
      expect(typeof j.durationMs === "number" && j.durationMs >= 0, `durationMs is not a number >= 0: ${show(j)}`);
      ctx.rewound = true;
      return { result: j };
    },
  },
  {
    name: "resumeRun",
    needs: ["rewound"],
    run: async (ctx) => {
      const r = await call("resumeRun", client.resumeRun({ runId: ctx.runId! }));
      expect(isPlainObject(r), `payload is not an object: ${show(r)}`);
      expect(r.runId === ctx.runId, `runId is ${show(r.runId)}: ${show(r)}`);
      // already_terminal would mean the rewind left the run finished.
      expect(r.status === "resume_requested", `status is ${show(r.status)}, expected resume_requested`);
      ctx.resumed = true;
      return { status: r.status };
    },
  },
  {
    name: "getRun.finished.again",
    needs: ["resumed"],
    run: async (ctx) => {
      const run = await waitFinished(ctx.runId!);
      const before = ctx.firstFinish!;
      // The run really ran again: frames were appended after frame 1 and it
      // finished later than the first time.
      expect(isCount(run.frameNo) && run.frameNo > 1, `frameNo is ${show(run.frameNo)} after the resumed run`);
      expect(
        typeof run.finishedAtMs === "number" &&
          typeof before.finishedAtMs === "number" &&
          run.finishedAtMs > before.finishedAtMs,
        `finishedAtMs ${show(run.finishedAtMs)} is not after the first finish ${show(before.finishedAtMs)}`,
      );
      return { status: run.status, frameNo: run.frameNo };
    },
  },
  ...NODES.map(
    (nodeId): Step => ({
      name: `getNodeDiff.${nodeId}.again`,
      needs: ["resumed", "diffs"],
      run: async (ctx) => {
        const before = ctx.diffs?.[nodeId];
        if (!before) throw new SkipStep(`getNodeDiff.${nodeId}`);
        const after = await nodeDiff(ctx.runId!, nodeId);
        expect(
          show(after) === show(before),
          `differs from before the rewind:\n  before ${show(before)}\n  after  ${show(after)}`,
        );
        return { nodeId, same: true, ...diffLine(after) };
      },
    }),
  ),
  {
    name: "rewindRun.RunNotFound",
    needs: [],
    run: async () => ({
      error: await expectRpcError(
        "rewindRun(no-such-run)",
        client.rewindRun({ runId: "no-such-run", frameNo: 1, confirm: true }),
        "RunNotFound",
        404,
      ),
    }),
  },
];

class SkipStep extends Error {}

function emit(line: Record<string, unknown>) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

const ctx: Ctx = {};
const failed: string[] = [];
for (const step of steps) {
  const missing = step.needs.filter((k) => ctx[k] === undefined);
  if (missing.length) {
    emit({ check: step.name, ok: null, skipped: `needs ${missing.join(", ")} from a failed check` });
    continue;
  }
  try {
    emit({ check: step.name, ok: true, ...(await step.run(ctx)) });
  } catch (e) {
    if (e instanceof SkipStep) {
      emit({ check: step.name, ok: null, skipped: `needs ${e.message}, which failed` });
      continue;
    }
    const message = e instanceof CheckFailure ? e.message : `unexpected ${describeError(e)}`;
    emit({ check: step.name, ok: false, error: message });
    process.stderr.write(`time_travel: FAIL ${step.name}: ${message}\n`);
    failed.push(step.name);
    if (!keepGoing) break;
  }
}
client.close();
if (failed.length) {
  process.stderr.write(`time_travel: ${failed.length} check(s) failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
process.stderr.write(`time_travel: all ${steps.length} checks passed against ${baseUrl}\n`);
