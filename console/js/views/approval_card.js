// views/approval_card.js — one pending approval with approve and deny, as
// the Approvals view and a run's page both show it.

import { h, replace, notice, errorText, fmtTime } from "../dom.js";

// What identifies an approval: its run, node and iteration.
function approvalKey(a) {
  return `${a.runId}/${a.nodeId}/${a.iteration}`;
}

// A list of cards in `container`: draw(list) redraws it only when the set
// of approvals changed, so a note being typed survives unrelated events;
// forget() makes the next draw redraw (after the container showed
// something else). `empty` is what an empty list shows.
export function approvalCards(ctx, container, { showRun = true, onDecided, empty }) {
  let shown = null;
  return {
    draw(list) {
      const keys = list.map(approvalKey).join("\n");
      if (keys === shown) return;
      shown = keys;
      replace(container, list.length ? list.map((a) => approvalCard(ctx, a, { showRun, onDecided })) : empty());
    },
    forget() { shown = null; },
  };
}

export function approvalCard(ctx, a, { showRun = true, onDecided } = {}) {
  const id = `note-${a.runId}-${a.nodeId}-${a.iteration}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const note = h("input", { id, type: "text", name: "note", placeholder: "optional" });
  const status = h("div", { "aria-live": "polite" });
  const decide = async (approved, buttons) => {
    for (const b of buttons) b.disabled = true;
    replace(status, notice(approved ? "Approving…" : "Denying…"));
    try {
      const decision = { approved };
      if (note.value.trim()) decision.note = note.value.trim();
      await ctx.rpc("submitApproval", { runId: a.runId, nodeId: a.nodeId, iteration: a.iteration, decision });
      replace(status, notice(approved ? "Approved." : "Denied."));
      onDecided?.();
    } catch (e) {
      replace(status, notice(`Could not decide: ${errorText(e)}`, "error"));
      for (const b of buttons) b.disabled = false;
    }
  };
  const approve = h("button", { type: "button", class: "good" }, "Approve");
  const deny = h("button", { type: "button", class: "danger" }, "Deny");
  approve.addEventListener("click", () => decide(true, [approve, deny]));
  deny.addEventListener("click", () => decide(false, [approve, deny]));
  return h("article", { class: "card approval", "data-approval": `${a.runId}/${a.nodeId}` },
    h("h3", {}, a.requestTitle || a.nodeId),
    h("p", { class: "meta" },
      showRun ? [h("a", { href: `#/runs/${encodeURIComponent(a.runId)}` }, a.runId), " · "] : null,
      `${a.workflowKey} · node ${a.nodeId} · iteration ${a.iteration} · asked ${fmtTime(a.requestedAtMs)}`),
    h("div", { class: "row" }, h("label", { for: id }, "Note"), note, approve, deny),
    status);
}
