// views/approvals.js — every pending approval, kept current by the live
// connection's approval events. Cards are redrawn only when the set of
// approvals changes, so a note being typed survives unrelated events.

import { h, replace, notice, errorText, throttle, serial } from "../dom.js";
import { approvalCards } from "./approval_card.js";

export function renderApprovals(ctx, main) {
  const body = h("div", { "data-testid": "approvals-body" });
  main.append(h("div", { class: "bar" }, h("h2", {}, "Pending approvals")), body);
  let gone = false;
  const cards = approvalCards(ctx, body, { onDecided: () => reload(), empty: () => notice("Nothing is waiting for an approval.") });
  const load = serial(async () => {
    let list;
    try {
      list = await ctx.rpc("listApprovals");
    } catch (e) {
      if (!gone) replace(body, notice(`Could not list approvals: ${errorText(e)}`, "error"));
      cards.forget();
      return;
    }
    if (!gone) cards.draw(list);
  });
  const reload = throttle(load, 400);
  const off = ctx.live.on((f) => {
    if (f.event === "approval.requested" || f.event === "approval.decided" || f.event === "run.completed") reload();
  });
  load();
  return () => { gone = true; off(); reload.cancel(); };
}
