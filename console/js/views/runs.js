// views/runs.js — the runs, newest first, a page at a time, kept current
// by the live connection's run and node events.

import { h, replace, badge, fmtTime, notice, errorText, throttle, serial } from "../dom.js";

const PAGE = 50;
const STATUSES = ["", "running", "waiting-approval", "waiting-event", "waiting-timer", "needs_attention",
  "finished", "failed", "cancelled"];

export function renderRuns(ctx, main) {
  const filter = h("select", { id: "run-status", name: "status" },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const body = h("div", { "data-testid": "runs-body" });
  // Made once, so a keyboard user keeps focus on them while pages change.
  const older = h("button", { type: "button", disabled: true }, "Older");
  const newer = h("button", { type: "button", disabled: true }, "Newer");
  const range = h("span", { class: "meta" });
  let offset = 0;
  let gone = false;
  main.append(
    h("div", { class: "bar" },
      h("h2", {}, "Runs"),
      h("label", { for: "run-status" }, "Status"), filter),
    body, h("div", { class: "row pager" }, newer, older, range));

  const load = serial(async () => {
    const asked = { status: filter.value, offset };
    const f = { limit: PAGE + 1, offset };
    if (asked.status) f.status = asked.status;
    let runs;
    try {
      runs = await ctx.rpc("listRuns", { filter: f });
    } catch (e) {
      if (!gone) replace(body, notice(`Could not list runs: ${errorText(e)}`, "error"));
      return;
    }
    // The filter or the page changed while this was asked: the run that
    // follows (serial) draws the right one.
    if (gone || asked.status !== filter.value || asked.offset !== offset) return;
    const more = runs.length > PAGE;
    runs = runs.slice(0, PAGE);
    older.disabled = !more;
    newer.disabled = offset === 0;
    range.textContent = runs.length ? `runs ${offset + 1}–${offset + runs.length}` : "";
    if (!runs.length) {
      replace(body, notice(offset ? "No older runs." : asked.status ? `No ${asked.status} runs.` : "No runs yet. Launch one from Workflows."));
      return;
    }
    replace(body, h("table", { class: "runs", "data-testid": "runs" },
      h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Started"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, runs.map((r) => h("tr", { "data-run": r.runId },
        h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.runId)}` }, r.runId)),
        h("td", {}, r.workflowKey),
        h("td", {}, badge(r.status)),
        h("td", {}, fmtTime(r.createdAtMs)))))));
  });
  const reload = throttle(load);
  filter.addEventListener("change", () => { offset = 0; load(); });
  older.addEventListener("click", () => { offset += PAGE; load(); });
  newer.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  const off = ctx.live.on((f) => {
    if (f.event?.startsWith("run.") || f.event === "node.finished" || f.event === "approval.requested") reload();
  });
  load();
  return () => { gone = true; off(); reload.cancel(); };
}
