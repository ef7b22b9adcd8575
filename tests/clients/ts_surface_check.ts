// tests/clients/ts_surface_check.ts — the generated TypeScript client has the
// upstream SmithersGatewayClient's surface (run by test_ts_client.py under
// Bun, which runs the upstream's TypeScript source from tests/client).
// Prints one JSON line {missing: [...], shared: [...], upstreamOnly: [...]}:
// `missing` must be empty (a member the upstream has and ours lacks while
// the contract has the method), `upstreamOnly` are the upstream's methods
// Anvil's contract does not define.

import { SmithersGatewayClient as Upstream } from "../client/node_modules/@smithers-orchestrator/gateway-client/src/index.ts";
import { GATEWAY_METHODS, SmithersGatewayClient as Ours } from "../../generated/clients/typescript/anvil_client.ts";

const GENERIC = ["rpc", "rpcRaw", "connect", "close", "closed", "streamRunEvents", "streamRunEventsResilient", "streamDevTools"];

function members(proto: object): string[] {
  return Object.getOwnPropertyNames(proto).filter((n) => n !== "constructor");
}

const contract = new Set(Object.keys(GATEWAY_METHODS).map((m) => m.replace(/\.([a-z])/g, (_, c: string) => c.toUpperCase())));
const ours = new Set(members(Ours.prototype));
const missing: string[] = [];
const shared: string[] = [];
const upstreamOnly: string[] = [];
for (const name of members(Upstream.prototype)) {
  if (GENERIC.includes(name) || contract.has(name)) {
    (ours.has(name) ? shared : missing).push(name);
  } else if (!name.startsWith("extension") && name !== "streamExtension") {
    upstreamOnly.push(name);
  }
}
const client = new Ours({ baseUrl: "http://127.0.0.1:1", token: "t", headers: { "x-a": "b" }, client: { id: "i", version: "1", platform: "p" } });
const upstream = new Upstream({ baseUrl: "http://127.0.0.1:1", token: "t" });
for (const field of ["baseUrl", "token", "headers", "fetchImpl", "WebSocketImpl", "client"]) {
  if (!(field in client) || !(field in upstream)) {
    missing.push(field);
  }
}
console.log(JSON.stringify({ missing, shared, upstreamOnly }));
