// views/approvals.js — every pending approval, kept current by the live
// connection's approval events.

import { h, replace, notice, errorText, debounce } from "../dom.js";
import { approvalCard } from "./approval_card.js";

export function renderApprovals(ctx, main) {
  const body = h("div", { "aria-live": "polite" });
  main.append(h("div", { class: "bar" }, h("h2", {}, "Pending approvals")), body);
  const load = async () => {
    try {
      const list = await ctx.rpc("listApprovals");
      if (!list.length) replace(body, notice("Nothing is waiting for an approval."));
      else replace(body, list.map((a) => approvalCard(ctx, a, { onDecided: reload })));
    } catch (e) {
      replace(body, notice(`Could not list approvals: ${errorText(e)}`, "error"));
    }
  };
  const reload = debounce(load, 400);
  const off = ctx.live.on((f) => {
    if (f.event === "approval.requested" || f.event === "approval.decided" || f.event === "run.completed") reload();
  });
  load();
  return () => { off(); reload.cancel(); };
}
