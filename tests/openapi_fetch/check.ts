// tests/openapi_fetch/check.ts — a user's openapi-fetch client over the
// types openapi-typescript 7 writes from openapi.yaml (./schema.d.ts, made
// by the test): it must type-check with tsc --strict and run against the
// server. Run by tests/integration/test_openapi_fetch.py: bun check.ts URL TOKEN.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

declare const process: { argv: string[] };
const url = process.argv[2];
const token = process.argv[3];
const client = createClient<paths>({ baseUrl: url, headers: { Authorization: `Bearer ${token}` } });

const health = await client.POST("/v1/rpc/health", { body: {} });
if (!health.data || health.data.ok !== true) throw new Error("health: " + JSON.stringify(health.error));
const protocol: number = health.data.payload.protocol;

const missing = await client.POST("/v1/rpc/getRun", { body: { runId: "run_missing_0001" } });
if (!missing.error || missing.error.error.code !== "RunNotFound") throw new Error("getRun: " + JSON.stringify(missing));

const launched = await client.POST("/v1/rpc/launchRun", { body: { workflow: "deploy", input: { sha: "abc" } } });
if (!launched.data) throw new Error("launchRun: " + JSON.stringify(launched.error));
const runId: string = launched.data.payload.runId;
const got = await client.POST("/v1/rpc/getRun", { body: { runId } });
if (!got.data || got.data.payload.runId !== runId) throw new Error("getRun: " + JSON.stringify(got.error));
console.log(JSON.stringify({ protocol, runId, runStatus: got.data.payload.status }));
