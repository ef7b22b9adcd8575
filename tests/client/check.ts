// What the Bun scripts in tests/client share: arguments, bounded calls, and
// named checks that print one JSON line each.
//
// A script builds a `Checks` and runs `checks.run(name, fn)` for each step.
// A check passes when fn returns (its return value, an object, is merged
// into the JSON line), fails when it throws. Without --keep-going the first
// failure ends the script (exit 1, "<script>: FAIL <check>: <why>" on
// stderr); with it every check runs whose `needs` passed, the others print
// `"ok": null, "skipped"`, and the exit status is 1 if anything failed.

import { GatewayRpcError } from "@smithers-orchestrator/gateway-client";

export const CALL_MS = 15_000; // bound on any single call
export const WAIT_MS = 20_000; // bound on any wait for a state
export const POLL_MS = 50;

export class CheckFailure extends Error {}

export function fail(message: string): never {
  throw new CheckFailure(message);
}

export function expect(cond: unknown, message: string): asserts cond {
  if (!cond) fail(message);
}

export function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 600 ? text.slice(0, 600) + "..." : text;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

/** A failed call, described with everything the client's error carries. */
export function describeError(e: unknown): string {
  if (e instanceof GatewayRpcError) {
    return (
      `GatewayRpcError ${e.code}` +
      (e.status !== undefined ? ` (HTTP ${e.status})` : "") +
      ` from ${e.method}: ${e.message}` +
      (e.requiredScope ? ` [requiredScope ${e.requiredScope}]` : "") +
      (e.details !== undefined ? ` details=${show(e.details)}` : "")
    );
  }
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** `p`, or a CheckFailure if it does not settle within CALL_MS. */
export async function bounded<T>(what: string, p: Promise<T>, ms = CALL_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailure(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A call that must succeed: any rejection becomes a CheckFailure saying why. */
export async function call<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await bounded(what, p);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure(`${what} failed: ${describeError(e)}`);
  }
}

/** A call that must fail with the client's GatewayRpcError `code` (and HTTP
 * `status` when given); returns the error. */
export async function refused(what: string, p: Promise<unknown>, code: string,
                              status?: number): Promise<GatewayRpcError> {
  let result: unknown;
  try {
    result = await bounded(what, p);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    expect(e instanceof GatewayRpcError, `${what}: rejected with ${describeError(e)}, not a GatewayRpcError`);
    expect(e.code === code, `${what}: code ${e.code}, expected ${code} (${describeError(e)})`);
    if (status !== undefined) {
      expect(e.status === status, `${what}: HTTP ${e.status}, expected ${status} (${describeError(e)})`);
    }
    return e;
  }
  fail(`${what}: succeeded (${show(result)}), expected ${code}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `read` until `done` holds for its value; returns that value. */
export async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) fail(`${what}: not reached within ${WAIT_MS} ms; last: ${show(v)}`);
    await sleep(POLL_MS);
  }
}

export type Args = { baseUrl: string; token: string; rest: string[]; keepGoing: boolean };

/** URL TOKEN [extra positional ...] [--keep-going], or ANVIL_URL/ANVIL_TOKEN. */
export function parseArgs(script: string, extra = ""): Args {
  const usage = (message: string): never => {
    process.stderr.write(
      `${script}: ${message}\n` +
        `usage: bun tests/client/${script}.ts URL TOKEN ${extra}[--keep-going]\n` +
        "       (or ANVIL_URL and ANVIL_TOKEN in the environment)\n",
    );
    process.exit(2);
  };
  const argv = process.argv.slice(2);
  const keepGoing = argv.includes("--keep-going");
  const positional = argv.filter((a) => a !== "--keep-going");
  const bad = positional.find((a) => a.startsWith("--"));
  if (bad) usage(`unknown option ${bad}`);
  const baseUrl = positional[0] ?? process.env.ANVIL_URL;
  const token = positional[1] ?? process.env.ANVIL_TOKEN;
  if (!baseUrl) usage("no server URL");
  if (!token) usage("no token");
  if (!/^https?:\/\//.test(baseUrl!)) usage(`not an http(s) URL: ${baseUrl}`);
  return { baseUrl: baseUrl!, token: token!, rest: positional.slice(2), keepGoing };
}

export class Checks {
  private readonly passed = new Set<string>();
  private failures = 0;

  constructor(private readonly script: string, private readonly keepGoing: boolean) {}

  /** Run one check unless one it needs did not pass. */
  async run(name: string, fn: () => Promise<Record<string, unknown> | void>, needs: string[] = []) {
    const missing = needs.filter((n) => !this.passed.has(n));
    if (missing.length) {
      console.log(JSON.stringify({ check: name, ok: null, skipped: `needs ${missing.join(", ")}` }));
      return;
    }
    try {
      const extra = (await fn()) ?? {};
      this.passed.add(name);
      console.log(JSON.stringify({ check: name, ok: true, ...extra }));
    } catch (e) {
      this.failures++;
      const why = e instanceof CheckFailure ? e.message : `unexpected ${describeError(e)}`;
      console.log(JSON.stringify({ check: name, ok: false, error: why }));
      process.stderr.write(`${this.script}: FAIL ${name}: ${why}\n`);
      if (!this.keepGoing) process.exit(1);
    }
  }

  ok(name: string): boolean {
    return this.passed.has(name);
  }

  /** Exit 0 when every check passed. */
  finish(): never {
    if (this.failures) {
      process.stderr.write(`${this.script}: ${this.failures} check(s) failed\n`);
      process.exit(1);
    }
    console.log("ok");
    process.exit(0);
  }
}
