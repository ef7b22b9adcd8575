// app.js — the console's frame: sign-in, the header (health, version, the
// live connection, who is signed in), the navigation and a hash router
// (#/runs, #/runs/<id>, #/workflows, #/approvals, #/schedules). Each view
// is a function (ctx, main, arg) that fills `main` and returns a cleanup.

import { h, replace, notice, errorText, fmtDuration, throttle, serial } from "./dom.js";
import { rpc, session, Live, whenUnauthorized } from "./api.js";
import { renderSignIn } from "./views/signin.js";
import { renderRuns } from "./views/runs.js";
import { renderRun } from "./views/run.js";
import { renderWorkflows } from "./views/workflows.js";
import { renderApprovals } from "./views/approvals.js";
import { renderSchedules } from "./views/schedules.js";

const root = document.getElementById("app");

const ROUTES = [
  { name: "runs", label: "Runs", render: renderRuns },
  { name: "workflows", label: "Workflows", render: renderWorkflows },
  { name: "approvals", label: "Approvals", render: renderApprovals },
  { name: "schedules", label: "Schedules", render: renderSchedules },
];

let live = null;
let cleanup = null;
let healthTimer = null;

function signOut(message) {
  window.onhashchange = null;
  session.token = null;
  live?.close();
  live = null;
  cleanup?.();
  cleanup = null;
  clearInterval(healthTimer);
  showSignIn(message);
}

function showSignIn(message) {
  renderSignIn(root, message, async (token) => {
    session.token = token;
    try {
      await rpc("health");
    } catch (e) {
      session.token = null;
      throw e;
    }
    start();
  });
}

function start() {
  live = new Live();
  const health = h("span", { class: "health", "data-testid": "health" }, "checking…");
  const who = h("span", { class: "who", "data-testid": "identity" });
  const link = h("span", { class: "live", "data-testid": "live" });
  const approvalsCount = h("span", { class: "count", "aria-label": "pending approvals" });
  const nav = h("nav", { "aria-label": "Sections" },
    h("ul", {}, ROUTES.map((r) => h("li", {},
      h("a", { href: `#/${r.name}`, "data-route": r.name }, r.label, r.name === "approvals" ? approvalsCount : null)))));
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(root,
    h("header", { class: "top" },
      h("h1", {}, "Anvil"),
      health, link, who,
      h("button", { type: "button", class: "quiet", onclick: () => signOut("Signed out.") }, "Sign out")),
    nav, main);

  live.onState((s) => {
    link.textContent = s === "live" ? "● live" : s === "refused" ? "○ refused" : "○ reconnecting";
    link.title = live.reason ?? "";
    link.className = `live live-${s}`;
  });
  // One count per burst of approval events, not one call per event.
  const recount = throttle(serial(async () => {
    try { approvalsCount.textContent = String((await rpc("listApprovals")).length); } catch { /* kept as is */ }
  }), 500);
  live.on((f) => {
    if (f.event === "hello") {
      const a = f.payload.auth ?? {};
      who.textContent = `${a.userId ?? "anonymous"} (${a.role ?? "no role"})`;
      approvalsCount.textContent = String(f.payload.snapshot?.approvals?.length ?? 0);
    } else if (f.event === "approval.requested" || f.event === "approval.decided") {
      recount();
    }
  });

  const refreshHealth = async () => {
    try {
      const hl = await rpc("health");
      health.textContent = `healthy · API ${hl.apiVersion} · protocol ${hl.protocol} · up ${fmtDuration(hl.uptimeMs)}`;
      health.className = "health health-ok";
    } catch (e) {
      health.textContent = `unhealthy: ${errorText(e)}`;
      health.className = "health health-bad";
    }
  };
  refreshHealth();
  healthTimer = setInterval(refreshHealth, 15000);

  const ctx = { live, rpc, go: (hash) => { location.hash = hash; } };
  const route = () => {
    // Only "#/..." is a route; any other fragment (the skip link's) is not.
    if (location.hash && !location.hash.startsWith("#/")) return;
    const [, name = "runs", ...rest] = (location.hash || "#/runs").split("/");
    const r = ROUTES.find((x) => x.name === name) ?? ROUTES[0];
    for (const a of nav.querySelectorAll("a")) {
      if (a.dataset.route === r.name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const previous = cleanup;
    cleanup = null;
    previous?.();
    replace(main);
    try {
      const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
      const view = r.name === "runs" && arg ? renderRun : r.render;
      cleanup = view(ctx, main, arg) ?? null;
    } catch (e) {
      replace(main, notice(`This view failed: ${errorText(e)}`, "error"));
      cleanup = null;
    }
  };
  window.onhashchange = () => { route(); main.focus({ preventScroll: true }); };
  route();
}

// Only a signed-in console signs out; the sign-in form shows its own refusal.
// The skip link moves focus without touching the route.
document.querySelector(".skip")?.addEventListener("click", (ev) => {
  ev.preventDefault();
  document.getElementById("main")?.focus();
});

whenUnauthorized((e) => { if (live) signOut(`Signed out: ${e.message || "the token was refused"}.`); });
if (session.token) start();
else showSignIn();
