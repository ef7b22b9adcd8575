// views/schedules.js — the cron schedules, with run-now.

import { h, replace, notice, errorText, fmtTime, serial } from "../dom.js";

export function renderSchedules(ctx, main) {
  const body = h("div");
  const status = h("div", { "aria-live": "polite" });
  main.append(h("div", { class: "bar" }, h("h2", {}, "Schedules")), status, body);
  const runNow = async (row, button) => {
    button.disabled = true;
    try {
      const r = await ctx.rpc("cronRun", { cronId: row.cronId });
      replace(status, notice("Started ", "info"));
      status.firstChild.append(h("a", { href: `#/runs/${encodeURIComponent(r.runId)}` }, r.runId), ` from ${row.cronId}.`);
      load();
    } catch (e) {
      replace(status, notice(`Could not run ${row.cronId}: ${errorText(e)}`, "error"));
    } finally {
      button.disabled = false;
    }
  };
  let gone = false;
  const load = serial(async () => {
    let rows;
    try { rows = await ctx.rpc("cronList"); } catch (e) {
      if (!gone) replace(body, notice(`Could not list schedules: ${errorText(e)}`, "error"));
      return;
    }
    if (gone) return;
    // The table is redrawn: keep the keyboard on the row it was on.
    const focused = document.activeElement?.closest?.("tr[data-cron]")?.dataset.cron;
    if (!rows.length) { replace(body, notice("No schedules.")); return; }
    replace(body, h("table", { class: "crons" },
      h("thead", {}, h("tr", {}, ["Schedule", "Workflow", "Pattern (UTC)", "Next", "Last", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((row) => {
        const button = h("button", { type: "button" }, "Run now");
        button.setAttribute("aria-label", `Run ${row.cronId} now`);
        button.addEventListener("click", () => runNow(row, button));
        return h("tr", { "data-cron": row.cronId },
          h("td", {}, row.cronId, row.enabled ? null : h("span", { class: "badge tone-off" }, "disabled")),
          h("td", {}, row.workflow),
          h("td", {}, h("code", {}, row.pattern)),
          h("td", {}, fmtTime(row.nextRunAtMs ?? undefined)),
          h("td", {}, fmtTime(row.lastRunAtMs ?? undefined)),
          h("td", {}, button));
      }))));
    if (focused) body.querySelector(`tr[data-cron="${CSS.escape(focused)}"] button`)?.focus();
  });
  load();
  return () => { gone = true; };
}
