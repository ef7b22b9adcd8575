// dom.js — building elements without HTML strings (every text from the
// server goes in as text, never as markup) and formatting values.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(ms) {
  if (typeof ms !== "number") return "—";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function fmtDuration(ms) {
  if (typeof ms !== "number" || ms < 0) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function since(startMs, endMs) {
  if (typeof startMs !== "number") return "—";
  return fmtDuration((typeof endMs === "number" ? endMs : Date.now()) - startMs);
}

const TONE = {
  finished: "ok", succeeded: "ok", running: "busy", waiting: "wait", "waiting-approval": "wait",
  "waiting-event": "wait", "waiting-timer": "wait", failed: "bad", cancelled: "off",
  skipped: "off", pending: "off", needs_attention: "bad",
};

export function badge(status) {
  return h("span", { class: `badge tone-${TONE[status] ?? "off"}` }, status ?? "unknown");
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// A message area: role=status for news, role=alert for errors.
export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export function errorText(err) {
  if (err && typeof err === "object" && "code" in err) return `${err.code}: ${err.message}`;
  return String(err?.message ?? err);
}

// fn at most once per `ms`, and always once after the last call: live
// events come in bursts, and a steady stream of them must not starve it.
export function throttle(fn, ms = 200) {
  let timer = null;
  let last = 0;
  const fire = () => { timer = null; last = Date.now(); fn(); };
  const wrapped = () => {
    if (timer === null) timer = setTimeout(fire, Math.max(0, last + ms - Date.now()));
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; };
  return wrapped;
}

// An async fn that never runs twice at once: a call while it runs makes it
// run once more when it is done, so answers land in the order asked and an
// older one never overwrites a newer one.
export function serial(fn) {
  let running = false;
  let again = false;
  return async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      do { again = false; await fn(); } while (again);
    } finally {
      running = false;
    }
  };
}
