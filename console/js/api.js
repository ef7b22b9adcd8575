// api.js — the console's only ways out: the gateway's HTTP RPC
// (POST /v1/rpc/<method>) and one WebSocket for live events and the
// WebSocket-only streams. The token comes from session storage (it is never
// put in a URL); both carry it the way every client does.

const TOKEN_KEY = "anvil.console.token";
const REQUEST_TIMEOUT_MS = 30000;

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class RpcError extends Error {
  constructor(code, message, status, details) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

// Called with the RpcError when the server says the token is no good.
let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export async function rpc(method, params = {}) {
  let response;
  try {
    response = await fetch(`/v1/rpc/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${session.token ?? ""}` },
      body: JSON.stringify(params),
    });
  } catch (e) {
    throw new RpcError("NetworkError", `The gateway did not answer: ${e.message}`, 0);
  }
  let frame;
  try { frame = await response.json(); } catch { frame = null; }
  if (!frame || frame.type !== "res") {
    throw new RpcError("HTTP_ERROR", `HTTP ${response.status} without a response frame`, response.status);
  }
  if (!frame.ok) {
    const e = frame.error ?? {};
    const err = new RpcError(e.code ?? "Internal", e.message ?? "", response.status, e.details);
    if (err.code === "Unauthorized") onUnauthorized(err);
    throw err;
  }
  return frame.payload;
}

// A WebSocket: events of every run the token may read (or only of the
// runs in `subscribe`), and requests (streamRunEvents) correlated by id.
// Reconnects with backoff; listeners see a "hello" event each time.
export class Live {
  constructor({ subscribe } = {}) {
    this.subscribe = subscribe;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.pending = new Map();
    this.nextId = 1;
    this.state = "connecting";
    this.reason = null;     // why the last connect was refused, if it was
    this.attempt = 0;
    this.stopped = false;
    this.open();
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  onState(fn) { this.stateListeners.add(fn); fn(this.state); return () => this.stateListeners.delete(fn); }

  setState(s) {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/`);
    this.ws = ws;
    ws.addEventListener("message", (m) => this.onFrame(ws, m.data));
    ws.addEventListener("close", () => this.onClose(ws));
  }

  onFrame(ws, text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f.type === "event" && f.event === "connect.challenge") {
      ws.send(JSON.stringify({
        type: "req", id: "connect", method: "connect",
        params: {
          minProtocol: 1, maxProtocol: 1, client: { name: "anvil-console" },
          auth: { token: session.token ?? "" }, ...(this.subscribe ? { subscribe: this.subscribe } : {}),
        },
      }));
      return;
    }
    if (f.type === "res" && f.id === "connect") {
      if (f.ok) {
        this.attempt = 0;
        this.reason = null;
        this.setState("live");
        this.emit({ event: "hello", payload: f.payload });
      } else if (f.error?.code === "Unauthorized") {
        // The token is no good: retrying cannot help.
        this.reason = f.error.message;
        this.setState("refused");
        onUnauthorized(new RpcError("Unauthorized", f.error.message, 401));
      } else {
        // Anything else (the server busy, a protocol it no longer speaks):
        // say why, and try again with the usual backoff.
        this.reason = `${f.error?.code}: ${f.error?.message}`;
        ws.close(1000, "retrying");
      }
      return;
    }
    if (f.type === "res") {
      const p = this.pending.get(f.id);
      if (!p) return;
      this.pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.ok) p.resolve(f.payload);
      else p.reject(new RpcError(f.error?.code ?? "Internal", f.error?.message ?? "", 0, f.error?.details));
      return;
    }
    if (f.type === "event") this.emit(f);
  }

  emit(f) { for (const fn of this.listeners) fn(f); }

  onClose(ws) {
    if (ws !== this.ws) return;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RpcError("Closed", "The live connection closed", 0));
    }
    this.pending.clear();
    if (this.stopped || this.state === "refused") return;
    this.setState("reconnecting");
    const delay = Math.min(10000, 250 * 2 ** this.attempt++);
    setTimeout(() => { if (!this.stopped) this.open(); }, delay);
  }

  request(method, params) {
    if (this.state !== "live") return Promise.reject(new RpcError("Closed", "The live connection is not open", 0));
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      // An answer that never comes must not hold the caller for ever.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError("Timeout", `${method} was not answered in ${REQUEST_TIMEOUT_MS / 1000} s`, 0));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  close() {
    this.stopped = true;
    this.ws?.close(1000, "signed out");
  }
}
