// views/run.js — one run: its state, the node tree with live states,
// durations, attempts and errors, pending approvals, outputs, the event
// history, the workspace diff and time travel (rewind to a frame).
//
// The page opens its own WebSocket subscribed to this run only: node and
// run events refresh the view, and streamRunEvents replays the run's
// events from the start. The socket closes when the page is left.

import { h, replace, badge, fmtTime, since, json, notice, errorText, debounce } from "../dom.js";
import { Live } from "../api.js";
import { approvalCard } from "./approval_card.js";

const TERMINAL = new Set(["finished", "failed", "cancelled"]);
// The stream's own frames (a replayed event, a heartbeat a second): not news.
const STREAM_EVENTS = new Set(["run.event", "run.heartbeat", "run.gap_resync", "run.error"]);

function section(title, id, ...children) {
  return h("section", { "aria-labelledby": id, class: "panel" }, h("h3", { id }, title), ...children);
}

// The latest iteration of each node, by id.
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
  const head = h("div", { class: "bar" }, h("h2", {}, "Run ", h("code", {}, runId)));
  const summary = h("div", { class: "summary", "data-testid": "run-summary" });
  const approvals = h("div");
  const tree = h("div", { "data-testid": "tree" });
  const outputs = h("div", { "data-testid": "outputs" });
  const events = h("ol", { class: "events", "data-testid": "events" });
  const diff = h("div");
  const travel = h("div");
  const status = h("div", { "aria-live": "polite" });
  main.append(head, status, summary,
    h("div", { class: "grid" },
      section("Nodes", "nodes-title", tree),
      h("div", {}, section("Approvals", "approvals-title", approvals), section("Outputs", "outputs-title", outputs))),
    section("Events", "events-title", events),
    section("Changes", "changes-title", diff),
    section("Time travel", "travel-title", travel));

  let gone = false;
  const seen = new Set();

  const loadRun = async () => {
    let run, snap = null, snapError = null;
    try {
      [run, snap] = await Promise.all([
        ctx.rpc("getRun", { runId }),
        // The tree's shape needs observability:read; a token without it
        // still sees every node, as a list.
        ctx.rpc("getDevToolsSnapshot", { runId }).catch((e) => {
          if (e.code !== "Forbidden") throw e;
          snapError = e;
          return null;
        }),
      ]);
    } catch (e) {
      if (!gone) replace(summary, notice(`Could not load the run: ${errorText(e)}`, "error"));
      return null;
    }
    if (gone) return null;
    const resume = h("button", { type: "button" }, "Resume");
    resume.addEventListener("click", async () => {
      resume.disabled = true;
      try { await ctx.rpc("resumeRun", { runId }); replace(status, notice("Resume requested.")); } catch (e) {
        replace(status, notice(`Could not resume: ${errorText(e)}`, "error"));
      } finally {
        resume.disabled = false;
      }
    });
    const cancel = h("button", { type: "button", class: "danger" }, "Cancel run");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { await ctx.rpc("cancelRun", { runId }); replace(status, notice("Cancelling…")); } catch (e) {
        replace(status, notice(`Could not cancel: ${errorText(e)}`, "error"));
        cancel.disabled = false;
      }
    });
    replace(summary,
      h("dl", {},
        h("dt", {}, "Status"), h("dd", { "data-testid": "run-status" }, badge(run.status)),
        h("dt", {}, "Workflow"), h("dd", {}, run.workflowKey),
        h("dt", {}, "Started"), h("dd", {}, fmtTime(run.createdAtMs)),
        h("dt", {}, "Duration"), h("dd", {}, since(run.createdAtMs, run.finishedAtMs ?? undefined)),
        h("dt", {}, "By"), h("dd", {}, run.triggeredBy ?? run.ownerId ?? "—"),
        h("dt", {}, "Input"), h("dd", {}, h("code", {}, JSON.stringify(run.input ?? {})))),
      run.error ? notice(`Failed: ${run.error}`, "error") : null,
      TERMINAL.has(run.status) ? null : h("div", { class: "row actions" }, resume, cancel));
    if (snap) {
      replace(tree, h("ul", { class: "tree", "aria-label": "Node tree" }, treeItem(snap.root, nodeMap(run))));
    } else {
      replace(tree,
        h("p", { class: "meta" }, `The nodes in workflow order; the tree needs the observability:read scope (${snapError.message}).`),
        h("ul", { class: "tree", "aria-label": "Nodes" }, [...nodeMap(run).values()].map((n) => treeItem(
          { type: n.kind === "signal" ? "wait-for-event" : n.kind, name: n.nodeId, props: { id: n.nodeId, state: n.state } },
          new Map([[n.nodeId, n]])))));
    }
    return run;
  };

  const loadApprovals = async () => {
    try {
      const list = await ctx.rpc("listApprovals", { filter: { runId } });
      if (gone) return;
      replace(approvals, list.length ? list.map((a) => approvalCard(ctx, a, { showRun: false, onDecided: refresh }))
        : h("p", { class: "meta" }, "None pending."));
    } catch (e) {
      if (!gone) replace(approvals, notice(`Could not list approvals: ${errorText(e)}`, "error"));
    }
  };

  const loadOutputs = async (run) => {
    const tasks = (run?.nodes ?? []).filter((n) => n.kind === "task" && n.state === "finished").slice(0, 50);
    if (!tasks.length) { replace(outputs, h("p", { class: "meta" }, "No task has finished yet.")); return; }
    const items = await Promise.all(tasks.map(async (n) => {
      try {
        const o = await ctx.rpc("getNodeOutput", { runId, nodeId: n.nodeId, iteration: n.iteration });
        return h("div", { "data-output": n.nodeId }, h("h4", {}, n.nodeId), o.row ? json(o.row) : h("p", { class: "meta" }, o.status));
      } catch (e) {
        return h("div", { "data-output": n.nodeId }, h("h4", {}, n.nodeId), notice(errorText(e), "error"));
      }
    }));
    if (!gone) replace(outputs, items);
  };

  const loadDiff = async () => {
    try {
      const d = await ctx.rpc("getRunDiff", { runId });
      if (!gone) replace(diff, d.patches?.length ? d.patches.map(diffView) : h("p", { class: "meta" }, "No workspace changes."));
    } catch (e) {
      if (!gone) replace(diff, notice(`No diff: ${errorText(e)}`, "info"));
    }
  };

  const loadFrames = async () => {
    let frames;
    try { frames = await ctx.rpc("frames.list", { runId, limit: 1000 }); } catch (e) {
      if (!gone) replace(travel, notice(`No frames: ${errorText(e)}`, "info"));
      return;
    }
    if (gone) return;
    const select = h("select", { id: "rewind-frame" },
      frames.frames.map((f) => h("option", { value: f.frameNo }, `frame ${f.frameNo} · ${fmtTime(f.createdAtMs)}`)));
    const button = h("button", { type: "button", class: "danger" }, "Rewind");
    button.addEventListener("click", async () => {
      const frameNo = Number(select.value);
      if (!window.confirm(`Rewind run ${runId} to frame ${frameNo}? Later frames, attempts and outputs are deleted.`)) return;
      button.disabled = true;
      try {
        const r = await ctx.rpc("rewindRun", { runId, frameNo, confirm: true });
        const warnings = r.effectBoundary?.warnings?.length ?? 0;
        replace(status, notice(`Rewound to frame ${r.newFrameNo}: ${r.deletedFrames} frames and ${r.deletedAttempts} attempts removed` +
          (warnings ? `; ${warnings} task${warnings === 1 ? "" : "s"} may have had effects outside the workspace` : "") +
          ". The run is held there until you resume it."));
        refresh();
      } catch (e) {
        replace(status, notice(`Rewind refused: ${errorText(e)}`, "error"));
      } finally {
        button.disabled = false;
      }
    });
    replace(travel,
      h("p", { class: "meta" }, `Latest frame ${frames.latestFrameNo}. Rewinding deletes what came after the chosen frame and makes the run resumable from it.`),
      h("div", { class: "row" }, h("label", { for: "rewind-frame" }, "Frame"), select, button));
    select.value = String(frames.latestFrameNo);
  };

  const refresh = debounce(async () => {
    const run = await loadRun();
    await Promise.all([loadApprovals(), loadOutputs(run), loadDiff(), loadFrames()]);
  }, 150);

  const addEvent = (p) => {
    if (seen.has(p.seq)) return;
    seen.add(p.seq);
    const where = p.payload?.nodeId ? ` ${p.payload.nodeId}` : "";
    const extra = p.payload?.error ? ` — ${typeof p.payload.error === "string" ? p.payload.error : p.payload.error.message ?? ""}` : "";
    // Follow the newest event unless the reader has scrolled up to read.
    const following = events.scrollHeight - events.scrollTop - events.clientHeight < 24;
    events.append(h("li", { "data-seq": p.seq }, h("span", { class: "seq" }, `#${p.seq}`), ` ${p.event}${where}${extra}`));
    if (following) events.scrollTop = events.scrollHeight;
  };

  // The run's own socket: replay from the start, then live.
  const stream = new Live({ subscribe: [runId] });
  stream.on((f) => {
    if (f.event === "hello") {
      stream.request("streamRunEvents", { runId, afterSeq: seen.size ? Math.max(...seen) : 0 })
        .catch((e) => { if (!gone) replace(status, notice(`No event stream: ${errorText(e)}`, "info")); });
    } else if (f.event === "run.event" && f.payload?.runId === runId) {
      addEvent(f.payload);
    } else if (f.event === "run.gap_resync") {
      events.append(h("li", {}, `events ${f.payload.fromSeq}–${f.payload.toSeq} are no longer kept`));
    }
    const ownEvent = f.event.startsWith("node.") || f.event.startsWith("approval.") ||
      (f.event.startsWith("run.") && !STREAM_EVENTS.has(f.event));
    if (f.payload?.runId === runId && ownEvent) {
      refresh();
    }
  });

  loadRun().then((run) => Promise.all([loadApprovals(), loadOutputs(run), loadDiff(), loadFrames()]));
  return () => { gone = true; refresh.cancel(); stream.close(); };
}
