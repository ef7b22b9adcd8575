// views/run.js — one run: its state, the node tree with live states,
// durations, attempts and errors, pending approvals, outputs, the event
// history, the workspace diff and time travel (rewind to a frame, resume).
//
// The page opens its own WebSocket subscribed to this run only: node and
// run events refresh the view, and streamRunEvents replays the run's
// events from the start. The socket closes when the page is left.
//
// Refreshes run one at a time (serial), so answers land in order; controls
// the operator may be using (the frame picker, a note being typed, the
// action buttons) are made once or redrawn only when what they show changed.

import { h, replace, badge, fmtTime, since, json, notice, errorText, throttle, serial } from "../dom.js";
import { Live } from "../api.js";
import { approvalCards } from "./approval_card.js";

const TERMINAL = new Set(["finished", "failed", "cancelled"]);
// The stream's own frames (a heartbeat a second, its errors): not news.
const STREAM_EVENTS = new Set(["run.heartbeat", "run.gap_resync", "run.error"]);
const MAX_OUTPUTS = 50;     // finished tasks whose rows are shown
const MAX_EVENTS = 2000;    // event lines kept on the page
const FRAMES = 200;         // the newest frames offered for a rewind

function section(title, id, ...children) {
  return h("section", { "aria-labelledby": id, class: "panel" }, h("h3", { id }, title), ...children);
}

// The latest iteration of each node, by id, in workflow order.
function nodeMap(run) {
  const m = new Map();
  for (const n of run.nodes ?? []) {
    const prev = m.get(n.nodeId);
    if (!prev || n.iteration >= prev.iteration) m.set(n.nodeId, n);
  }
  return m;
}

function treeItem(node, nodes) {
  const id = node.props?.id;
  const n = id ? nodes.get(id) : null;
  const state = n?.state ?? node.props?.state;
  const label = node.type === "workflow" ? node.name
    : `${id ?? node.name}${node.props?.title ? ` — ${node.props.title}` : ""}`;
  const facts = [];
  if (n?.startedAtMs) facts.push(since(n.startedAtMs, n.finishedAtMs));
  if (n?.attempts) facts.push(`${n.attempts} attempt${n.attempts === 1 ? "" : "s"}`);
  if (node.task?.maxAttempts > 1) facts.push(`of ${node.task.maxAttempts}`);
  const error = n?.error ?? node.props?.error;
  return h("li", { "data-node": id ?? node.name, "data-state": state ?? "" },
    h("div", { class: "node" },
      h("span", { class: "kind" }, node.type === "wait-for-event" ? "signal" : node.type),
      h("span", { class: "name" }, label),
      state ? badge(state) : null,
      facts.length ? h("span", { class: "meta" }, facts.join(" · ")) : null),
    error ? h("p", { class: "node-error" }, error) : null,
    node.children?.length ? h("ul", {}, node.children.map((c) => treeItem(c, nodes))) : null);
}

function diffView(patch) {
  return h("details", { class: "diff" },
    h("summary", {}, `${patch.operation} ${patch.path}`),
    h("pre", {}, (patch.diff ?? "").split("\n").map((line) => h("span", {
      class: line.startsWith("+") && !line.startsWith("+++") ? "add"
        : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : null,
    }, `${line}\n`))));
}

export function renderRun(ctx, main, runId) {
  const status = h("div", { "aria-live": "polite" });
  const facts = h("div");
  // Nothing in getRun says a run is held (paused, or rewound), so Resume is
  // always offered, quietly; on a run that is not held it changes nothing.
  const resume = h("button", { type: "button", class: "secondary", title: "Let a paused or rewound run go on" }, "Resume");
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel run");
  const actions = h("div", { class: "row actions", hidden: true }, resume, cancel);
  const approvals = h("div");
  const tree = h("div", { "data-testid": "tree" });
  const outputs = h("div", { "data-testid": "outputs" });
  const events = h("ol", { class: "events", "data-testid": "events" });
  const diff = h("div");
  const frameSelect = h("select", { id: "rewind-frame" });
  const rewind = h("button", { type: "button", class: "danger" }, "Rewind");
  const travelNote = h("p", { class: "meta" });
  main.append(
    h("div", { class: "bar" }, h("h2", {}, "Run ", h("code", {}, runId))),
    status,
    h("div", { class: "summary", "data-testid": "run-summary" }, facts, actions),
    h("div", { class: "grid" },
      section("Nodes", "nodes-title", tree),
      h("div", {}, section("Approvals", "approvals-title", approvals), section("Outputs", "outputs-title", outputs))),
    section("Events", "events-title", events),
    section("Changes", "changes-title", diff),
    section("Time travel", "travel-title", travelNote,
      h("div", { class: "row" }, h("label", { for: "rewind-frame" }, "Frame"), frameSelect, rewind)));

  let gone = false;
  let lastSeq = 0;
  const outputCache = new Map();   // "<node>#<iteration>" -> element, for finished tasks

  const act = async (button, call, done) => {
    button.disabled = true;
    try { await call(); replace(status, notice(done)); } catch (e) {
      replace(status, notice(`${button.textContent} refused: ${errorText(e)}`, "error"));
    } finally {
      button.disabled = false;
    }
  };
  resume.addEventListener("click", () => act(resume, () => ctx.rpc("resumeRun", { runId }), "Resume requested."));
  cancel.addEventListener("click", () => act(cancel, () => ctx.rpc("cancelRun", { runId }), "Cancelling…"));

  const drawRun = (run, snap, snapError) => {
    replace(facts,
      h("dl", {},
        h("dt", {}, "Status"), h("dd", { "data-testid": "run-status" }, badge(run.status)),
        h("dt", {}, "Workflow"), h("dd", {}, run.workflowKey),
        h("dt", {}, "Started"), h("dd", {}, fmtTime(run.createdAtMs)),
        h("dt", {}, "Duration"), h("dd", {}, since(run.createdAtMs, run.finishedAtMs ?? undefined)),
        h("dt", {}, "By"), h("dd", {}, run.triggeredBy ?? run.ownerId ?? "—"),
        h("dt", {}, "Input"), h("dd", {}, h("code", {}, JSON.stringify(run.input ?? {})))),
      run.error ? notice(`Failed: ${run.error}`, "error") : null);
    actions.hidden = TERMINAL.has(run.status);
    const nodes = nodeMap(run);
    if (snap) {
      replace(tree, h("ul", { class: "tree", "aria-label": "Node tree" }, treeItem(snap.root, nodes)));
      return;
    }
    // No tree (observability:read missing, or no frame yet): every node, as a list.
    const why = snapError.code === "Forbidden" ? "the tree needs the observability:read scope" : "no tree";
    replace(tree,
      h("p", { class: "meta" }, `The nodes in workflow order; ${why} (${snapError.code}: ${snapError.message}).`),
      h("ul", { class: "tree", "aria-label": "Nodes" }, [...nodes.values()].map((n) => treeItem(
        { type: n.kind === "signal" ? "wait-for-event" : n.kind, name: n.nodeId, props: { id: n.nodeId, state: n.state } },
        new Map([[n.nodeId, n]])))));
  };

  const cards = approvalCards(ctx, approvals, {
    showRun: false, onDecided: () => refresh(), empty: () => h("p", { class: "meta" }, "None pending."),
  });
  const loadApprovals = async () => {
    let list;
    try {
      list = await ctx.rpc("listApprovals", { filter: { runId } });
    } catch (e) {
      if (!gone) replace(approvals, notice(`Could not list approvals: ${errorText(e)}`, "error"));
      cards.forget();
      return;
    }
    if (!gone) cards.draw(list);
  };

  const loadOutputs = async (run) => {
    const done = (run.nodes ?? []).filter((n) => n.kind === "task" && n.state === "finished");
    const tasks = done.slice(0, MAX_OUTPUTS);
    if (!tasks.length) { replace(outputs, h("p", { class: "meta" }, "No task has finished yet.")); return; }
    const items = await Promise.all(tasks.map(async (n) => {
      const key = `${n.nodeId}#${n.iteration}`;
      if (outputCache.has(key)) return outputCache.get(key);
      try {
        const o = await ctx.rpc("getNodeOutput", { runId, nodeId: n.nodeId, iteration: n.iteration });
        const el = h("div", { "data-output": n.nodeId }, h("h4", {}, n.nodeId), o.row ? json(o.row) : h("p", { class: "meta" }, o.status));
        if (o.row) outputCache.set(key, el);   // a finished task's row does not change
        return el;
      } catch (e) {
        return h("div", { "data-output": n.nodeId }, h("h4", {}, n.nodeId), notice(errorText(e), "error"));
      }
    }));
    if (gone) return;
    replace(outputs, items, done.length > tasks.length
      ? h("p", { class: "meta" }, `The first ${tasks.length} of ${done.length} finished tasks; getNodeOutput reads the others.`) : null);
  };

  const loadDiff = async () => {
    try {
      const d = await ctx.rpc("getRunDiff", { runId });
      if (gone) return;
      if (d.status === "oversized") {
        replace(diff, notice(`The run's diff is ${d.sizeBytes} bytes, over the ${d.maxBytes} bytes one answer may hold; read it node by node (getNodeDiff, anvil runs diff).`));
      } else {
        replace(diff, d.patches?.length ? d.patches.map(diffView) : h("p", { class: "meta" }, "No workspace changes."));
      }
    } catch (e) {
      if (!gone) replace(diff, notice(`No diff: ${errorText(e)}`, "info"));
    }
  };

  const loadFrames = async (run) => {
    const latest = run.frameNo ?? 0;
    let frames;
    try {
      frames = await ctx.rpc("frames.list", { runId, afterFrameNo: Math.max(0, latest - FRAMES), limit: FRAMES });
    } catch (e) {
      if (gone) return;
      travelNote.textContent = `No frames: ${errorText(e)}`;
      frameSelect.disabled = rewind.disabled = true;
      return;
    }
    if (gone) return;
    const keep = frameSelect.value;
    const newest = frames.frames.map((f) => f.frameNo).reverse();
    replace(frameSelect, frames.frames.slice().reverse().map((f) =>
      h("option", { value: f.frameNo }, `frame ${f.frameNo} · ${fmtTime(f.createdAtMs)}`)));
    // The operator's choice survives refreshes while the frame exists.
    frameSelect.value = newest.includes(Number(keep)) && keep !== "" ? keep : String(newest[0] ?? "");
    frameSelect.disabled = rewind.disabled = newest.length === 0;
    travelNote.textContent = newest.length
      ? `Latest frame ${frames.latestFrameNo}${frames.latestFrameNo > FRAMES ? ` (the newest ${FRAMES} are offered)` : ""}. ` +
        "Rewinding deletes what came after the chosen frame and holds the run there until it is resumed."
      : "The run has no frame to rewind to yet.";
  };

  rewind.addEventListener("click", async () => {
    const frameNo = Number(frameSelect.value);
    if (frameSelect.value === "" || !Number.isInteger(frameNo)) return;
    if (!window.confirm(`Rewind run ${runId} to frame ${frameNo}? Later frames, attempts and outputs are deleted.`)) return;
    rewind.disabled = true;
    try {
      const r = await ctx.rpc("rewindRun", { runId, frameNo, confirm: true });
      const warnings = r.effectBoundary?.warnings?.length ?? 0;
      outputCache.clear();
      replace(status, notice(`Rewound to frame ${r.newFrameNo}: ${r.deletedFrames} frames and ${r.deletedAttempts} attempts removed` +
        (warnings ? `; ${warnings} task${warnings === 1 ? "" : "s"} may have had effects outside the workspace` : "") +
        ". The run is held there until you resume it."));
      refresh();
    } catch (e) {
      replace(status, notice(`Rewind refused: ${errorText(e)}`, "error"));
    } finally {
      rewind.disabled = false;
    }
  });

  const loadAll = serial(async () => {
    let run, snap = null, snapError = null;
    try {
      [run, snap] = await Promise.all([
        ctx.rpc("getRun", { runId }),
        ctx.rpc("getDevToolsSnapshot", { runId }).catch((e) => { snapError = e; return null; }),
      ]);
    } catch (e) {
      if (!gone) replace(facts, notice(`Could not load the run: ${errorText(e)}`, "error"));
      return;
    }
    if (gone) return;
    drawRun(run, snap, snapError);
    await Promise.all([loadApprovals(), loadOutputs(run), loadDiff(), loadFrames(run)]);
  });
  const refresh = throttle(loadAll, 150);

  const addEvent = (p) => {
    if (p.seq <= lastSeq) return;
    lastSeq = p.seq;
    const where = p.payload?.nodeId ? ` ${p.payload.nodeId}` : "";
    const extra = p.payload?.error ? ` — ${typeof p.payload.error === "string" ? p.payload.error : p.payload.error.message ?? ""}` : "";
    // Follow the newest event unless the reader has scrolled up to read.
    const following = events.scrollHeight - events.scrollTop - events.clientHeight < 24;
    events.append(h("li", { "data-seq": p.seq }, h("span", { class: "seq" }, `#${p.seq}`), ` ${p.event}${where}${extra}`));
    while (events.childElementCount > MAX_EVENTS) events.firstElementChild.remove();
    if (following) events.scrollTop = events.scrollHeight;
  };

  // The run's own socket: replay from the start (or from the last event
  // seen, after a reconnect), then live.
  const stream = new Live({ subscribe: [runId] });
  stream.on((f) => {
    if (gone) return;
    if (f.event === "hello") {
      stream.request("streamRunEvents", { runId, afterSeq: lastSeq })
        .catch((e) => { if (!gone) replace(status, notice(`No event stream: ${errorText(e)}`, "info")); });
    } else if (f.event === "run.event" && f.payload?.runId === runId) {
      addEvent(f.payload);
    } else if (f.event === "run.gap_resync" && f.payload?.runId === runId) {
      events.append(h("li", {}, `events ${f.payload.fromSeq}–${f.payload.toSeq} are no longer kept`));
    }
    if (f.event === "run.time_travel_jumped") outputCache.clear();
    // Anything that happened between the first load and this socket's
    // subscription comes only as a replayed run.event, so those refresh
    // too, as does every (re)connect.
    const news = f.event === "hello" || f.event === "run.event" || f.event.startsWith("node.") ||
      f.event.startsWith("approval.") || (f.event.startsWith("run.") && !STREAM_EVENTS.has(f.event));
    if (news && (f.event === "hello" || f.payload?.runId === runId)) refresh();
  });

  loadAll();
  return () => { gone = true; refresh.cancel(); stream.close(); };
}
