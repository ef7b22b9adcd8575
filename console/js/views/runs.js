// views/runs.js — the runs, newest first, kept current by the live
// connection's run and node events.

import { h, replace, badge, fmtTime, notice, errorText, debounce } from "../dom.js";

const PAGE = 50;
const STATUSES = ["", "running", "waiting-approval", "waiting-event", "waiting-timer", "finished", "failed", "cancelled"];

export function renderRuns(ctx, main) {
  const filter = h("select", { id: "run-status", name: "status" },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const body = h("div", { "aria-live": "polite" });
  // Made once, so a keyboard user keeps focus on them while pages change.
  const older = h("button", { type: "button", disabled: true }, "Older");
  const newer = h("button", { type: "button", disabled: true }, "Newer");
  const range = h("span", { class: "meta" });
  const pager = h("div", { class: "row pager" }, newer, older, range);
  let offset = 0;
  main.append(
    h("div", { class: "bar" },
      h("h2", {}, "Runs"),
      h("label", { for: "run-status" }, "Status"), filter),
    body, pager);

  const load = async () => {
    const f = { limit: PAGE + 1, offset };
    if (filter.value) f.status = filter.value;
    let runs;
    try {
      runs = await ctx.rpc("listRuns", { filter: f });
    } catch (e) {
      replace(body, notice(`Could not list runs: ${errorText(e)}`, "error"));
      return;
    }
    const more = runs.length > PAGE;
    runs = runs.slice(0, PAGE);
    older.disabled = !more;
    newer.disabled = offset === 0;
    range.textContent = runs.length ? `runs ${offset + 1}–${offset + runs.length}` : "";
    if (!runs.length) {
      replace(body, notice(offset ? "No older runs." : "No runs yet. Launch one from Workflows."));
      return;
    }
    replace(body, h("table", { class: "runs", "data-testid": "runs" },
      h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Started"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, runs.map((r) => h("tr", { "data-run": r.runId },
        h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.runId)}` }, r.runId)),
        h("td", {}, r.workflowKey),
        h("td", {}, badge(r.status)),
        h("td", {}, fmtTime(r.createdAtMs)))))));
  };
  const reload = debounce(load);
  filter.addEventListener("change", () => { offset = 0; load(); });
  older.addEventListener("click", () => { offset += PAGE; load(); });
  newer.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  const off = ctx.live.on((f) => {
    if (f.event?.startsWith("run.") || f.event === "node.finished" || f.event === "approval.requested") reload();
  });
  load();
  return () => { off(); reload.cancel(); };
}
