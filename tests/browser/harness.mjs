// Real-browser test harness: the real `anvil` binary on a loopback port and
// Debian's chromium driven by playwright-core (never a browser download).
//
// A test file is an ES module that calls browserTest() once:
//
//   import { browserTest, TOKENS } from './harness.mjs';
//   await browserTest('ui_mount', { config: 'ui: { dir: ui }\n', files: {...} }, async (t) => {
//     const page = await t.newPage();
//     await t.step('the shell loads', async () => { await page.goto(t.url('/')); ... });
//   });
//
// and runs on its own (docs/testing.md#browser-tests):
//
//   tests/client/node_modules/.bin/node tests/browser/ui_mount.mjs --anvil build/anvil
//
// What it owns, mirroring tests/integration/harness.py: a fresh temp dir with
// anvil.yaml (listen 127.0.0.1:0, read back from --port-file, so no port race),
// the three example tokens, the console, the example workflows copied from
// examples/workflows/; a bounded wait for GET /health; SIGTERM at the end
// (SIGKILL after 10 s) with exit status 0 required, so a crash or a sanitizer
// report fails the test. On any failure it prints the server's log and keeps
// the evidence (screenshot, console messages, server log) in the artifacts
// dir, never in the source tree.
//
// Environment: ANVIL_BIN (when --anvil is not given), ANVIL_CHROMIUM (default
// /usr/bin/chromium), ANVIL_BROWSER_ARTIFACTS (default
// <dir of the anvil binary>/browser-artifacts/<test>), ANVIL_SCREENSHOT_DIR
// (when set, shoot() saves documentation screenshots there).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = path.resolve(HERE, '..', '..');

// Safety bounds only, never assertions about speed: ASan builds start slower.
const TEST_TIMEOUT_MS = 55_000;      // the whole test; CTest's TIMEOUT is the backstop
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const STEP_TIMEOUT_MS = 15_000;
const ACTION_TIMEOUT_MS = 10_000;    // playwright's default per action/navigation
const CLOSE_TIMEOUT_MS = 10_000;

// The same roles and scopes as examples/anvil.yaml.
export const TOKENS = {
  operator: 'browser-operator-token',
  viewer: 'browser-viewer-token',
  approver: 'browser-approver-token',
};

function log(msg) {
  process.stdout.write(`browser: ${msg}\n`);
}

// `--anvil PATH` / `--anvil=PATH`, else $ANVIL_BIN, else build/anvil.
function anvilBin() {
  const args = process.argv.slice(2);
  let p = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--anvil' && i + 1 < args.length) p = args[++i];
    else if (args[i].startsWith('--anvil=')) p = args[i].slice('--anvil='.length);
  }
  p = path.resolve(p || process.env.ANVIL_BIN || path.join(SOURCE_DIR, 'build', 'anvil'));
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    throw new Error(`anvil binary not found or not executable: ${p} (pass --anvil PATH or set ANVIL_BIN)`);
  }
  return p;
}

function slug(name) {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'step';
}

// Rejects with a clear message when `promise` is not settled within `ms`.
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// the server
// ---------------------------------------------------------------------------

function exampleWorkflows() {
  const dir = path.join(SOURCE_DIR, 'examples', 'workflows');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => ({ key: f.slice(0, -'.yaml'.length), file: path.join(dir, f) }));
}

// anvil.yaml for one test. `config` is appended at the top level (e.g. a
// `ui:` mount); workflowConfig[key] is appended inside that workflow's
// mapping (e.g. `ui: { dir: ui-deploy }`).
function configText(opts) {
  const wf = exampleWorkflows().map(({ key }) => {
    const extra = (opts.workflowConfig || {})[key];
    return `  ${key}:\n    file: workflows/${key}.yaml\n` + (extra ? `    ${extra.trim()}\n` : '');
  }).join('');
  return `# written by tests/browser/harness.mjs
listen: 127.0.0.1:0
database: anvil.db
auth:
  mode: token
  tokens:
    ${TOKENS.operator}: { role: operator, scopes: ["*"], userId: "user:browser-operator" }
    ${TOKENS.viewer}: { role: viewer, scopes: ["run:read"], userId: "user:browser-viewer" }
    ${TOKENS.approver}: { role: approver, scopes: ["run:read", "approval:submit"], userId: "user:browser-approver" }
console: { enabled: true, path: /console }
workflows:
${wf}${opts.config || ''}`;
}

export class Server {
  constructor(opts = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-browser-'));
    fs.mkdirSync(path.join(this.dir, 'workflows'));
    for (const { key, file } of exampleWorkflows())
      fs.copyFileSync(file, path.join(this.dir, 'workflows', `${key}.yaml`));
    for (const [rel, text] of Object.entries(opts.files || {})) {
      const p = path.join(this.dir, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, text);
    }
    this.configPath = path.join(this.dir, 'anvil.yaml');
    fs.writeFileSync(this.configPath, configText(opts));
    this.portFile = path.join(this.dir, 'port');
    this.logPath = path.join(this.dir, 'server.log');
    this.proc = null;
    this.exit = null;     // { code, signal } once the process has exited
    this.port = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async start() {
    // stdout and stderr both go to one file: the order of lines is kept.
    const fd = fs.openSync(this.logPath, 'a');
    this.proc = spawn(anvilBin(), ['serve', '--config', this.configPath, '--port-file', this.portFile],
      { cwd: this.dir, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.proc.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        resolve(this.exit);
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exit)
        throw new Error(`anvil serve exited (${JSON.stringify(this.exit)}) before answering /health`);
      if (this.port === null) {
        const text = fs.existsSync(this.portFile) ? fs.readFileSync(this.portFile, 'utf8').trim() : '';
        if (text) this.port = Number(text);
      }
      if (this.port !== null) {
        try {
          const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2_000) });
          if (res.status === 200) return this;
        } catch {
          // not accepting yet: try again
        }
      }
      await sleep(50);
    }
    throw new Error(`anvil serve did not answer GET /health with 200 within ${START_TIMEOUT_MS} ms`);
  }

  // SIGTERM, bounded wait, SIGKILL fallback. Throws unless it exited 0.
  async stop() {
    if (!this.proc) return;
    if (!this.exit) {
      this.proc.kill('SIGTERM');
      try {
        await within(STOP_TIMEOUT_MS, 'anvil serve after SIGTERM', this.exited);
      } catch {
        this.proc.kill('SIGKILL');
        await this.exited;
        throw new Error(`anvil serve ignored SIGTERM for ${STOP_TIMEOUT_MS} ms (killed)`);
      }
    }
    const { code, signal, error } = this.exit;
    if (error) throw new Error(`anvil serve could not run: ${error.message}`);
    if (code !== 0)
      throw new Error(`anvil serve exited with ${signal ? `signal ${signal}` : `status ${code}`}`);
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// the browser
// ---------------------------------------------------------------------------

export function chromiumPath() {
  return process.env.ANVIL_CHROMIUM || '/usr/bin/chromium';
}

export async function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    timeout: START_TIMEOUT_MS,
    // --no-sandbox: tests run as root in CI, where chromium refuses its
    // sandbox. --no-proxy-server: loopback only, whatever http_proxy says.
    // --disable-dev-shm-usage: containers often have a tiny /dev/shm.
    args: ['--no-sandbox', '--no-proxy-server', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

// ---------------------------------------------------------------------------
// one test
// ---------------------------------------------------------------------------

export class TestContext {
  constructor(name, server, browser, context, artifacts) {
    this.name = name;
    this.server = server;
    this.browser = browser;
    this.context = context;
    this.artifacts = artifacts;
    this.pages = [];
    this.messages = [];   // every console message and page error, in order
    this.errors = [];     // page errors and console errors
    this.allowed = [];    // RegExps of errors the test expects
  }

  url(p) {
    return this.server.url + p;
  }

  // A page whose console messages and errors are recorded.
  async newPage() {
    const page = await this.context.newPage();
    const n = this.pages.push(page);
    page.on('console', (msg) => {
      const line = `[page ${n}] console.${msg.type()}: ${msg.text()}`;
      this.messages.push(line);
      if (msg.type() === 'error') this.recordError(line);
    });
    page.on('pageerror', (err) => {
      const line = `[page ${n}] pageerror: ${err.stack || err.message}`;
      this.messages.push(line);
      this.recordError(line);
    });
    return page;
  }

  // An error is judged when it happens, against the allowances in force
  // then, so an allowance for one step does not hide a later error.
  recordError(line) {
    if (!this.allowed.some((re) => re.test(line))) this.errors.push(line);
  }

  // Errors the test provokes on purpose (matching re) do not fail it, until
  // the returned function is called.
  allowErrors(re) {
    this.allowed.push(re);
    return () => {
      const i = this.allowed.indexOf(re);
      if (i >= 0) this.allowed.splice(i, 1);
    };
  }

  unexpectedErrors() {
    return this.errors;
  }

  // Screenshot of the last page and the console so far, into the artifacts
  // dir. Returns the two paths (screenshot null if it could not be taken).
  async saveEvidence(label) {
    fs.mkdirSync(this.artifacts, { recursive: true });
    const base = path.join(this.artifacts, slug(label));
    const consolePath = `${base}.console.txt`;
    fs.writeFileSync(consolePath, this.messages.join('\n') + '\n');
    let screenshot = null;
    const page = this.pages[this.pages.length - 1];
    if (page && !page.isClosed()) {
      try {
        await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: ACTION_TIMEOUT_MS });
        screenshot = `${base}.png`;
      } catch (err) {
        log(`could not take a screenshot: ${err.message}`);
      }
    }
    return { screenshot, console: consolePath };
  }

  // Runs fn() bounded by timeoutMs. On failure: screenshot + console into
  // the artifacts dir, printed, then throws (the test fails). With
  // expectFailure the failure is the point (a self-test of this harness):
  // returns { error, screenshot, console } and throws if fn succeeded.
  async step(name, fn, { timeoutMs = STEP_TIMEOUT_MS, expectFailure = false } = {}) {
    try {
      await within(timeoutMs, `step "${name}"`, Promise.resolve().then(fn));
    } catch (error) {
      const evidence = await this.saveEvidence(name);
      if (expectFailure) {
        log(`ok   ${name} (failed as expected: ${error.message.split('\n')[0]})`);
        log(`     evidence: ${evidence.screenshot} ${evidence.console}`);
        return { error, ...evidence };
      }
      log(`FAIL ${name}: ${error.stack || error.message}`);
      log(`     screenshot: ${evidence.screenshot}`);
      log(`     console:    ${evidence.console}`);
      error.evidenceSaved = true;
      throw error;
    }
    if (expectFailure) throw new Error(`step "${name}" was expected to fail and did not`);
    log(`ok   ${name}`);
    return null;
  }
}

// A documentation screenshot: <ANVIL_SCREENSHOT_DIR>/<name>.png when that is
// set (to refresh the committed ones in docs/), else nothing. Returns the path.
export async function shoot(page, name) {
  const dir = process.env.ANVIL_SCREENSHOT_DIR;
  if (!dir) return null;
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(path.resolve(dir), `${name}.png`);
  await page.screenshot({ path: p, fullPage: true, timeout: ACTION_TIMEOUT_MS });
  log(`screenshot ${p}`);
  return p;
}

// True when `p` cannot end up in a commit: outside the source tree, or
// inside it under a path git ignores (the build dir).
export function outsideCommittedTree(p) {
  const rel = path.relative(SOURCE_DIR, path.resolve(p));
  if (rel.startsWith('..') || path.isAbsolute(rel)) return true;
  const r = spawnSync('git', ['-C', SOURCE_DIR, 'check-ignore', '-q', rel], { stdio: 'ignore' });
  return r.status === 0;
}

// Runs one test: server, chromium, body(t), then always closes the browser
// and stops the server. Exits the process with 0 only when everything passed.
export async function browserTest(name, opts, body) {
  const failures = [];
  let server = null;
  let browser = null;
  let t = null;
  const artifacts = path.resolve(process.env.ANVIL_BROWSER_ARTIFACTS
    || path.join(path.dirname(anvilBin()), 'browser-artifacts', name));
  // Old evidence would mislead: the dir holds this run's only.
  fs.rmSync(artifacts, { recursive: true, force: true });
  // Killed from outside (CTest's TIMEOUT, ^C): no server may outlive us.
  // playwright-core closes the chromium it launched on its own.
  const killServer = () => {
    if (!server) return;
    if (server.proc && !server.exit) server.proc.kill('SIGKILL');
    server.cleanup();
  };
  process.on('exit', killServer);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      log(`${name}: ${sig}, stopping`);
      killServer();
      process.exit(1);
    });
  }

  const run = async () => {
    server = new Server(opts);
    log(`${name}: server dir ${server.dir}`);
    await server.start();
    browser = await launchChromium();
    log(`${name}: ${server.url}, chromium ${browser.version()} (${chromiumPath()})`);
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    t = new TestContext(name, server, browser, context, artifacts);
    await body(t);
    const unexpected = t.unexpectedErrors();
    if (unexpected.length)
      throw new Error(`errors in the page:\n  ${unexpected.join('\n  ')}`);
  };

  try {
    await within(TEST_TIMEOUT_MS, `test ${name}`, run());
  } catch (err) {
    failures.push(err);
    if (t && !err.evidenceSaved) {
      const ev = await t.saveEvidence('failure').catch(() => null);
      if (ev) log(`evidence: ${ev.screenshot} ${ev.console}`);
    }
  }
  if (browser) {
    await within(CLOSE_TIMEOUT_MS, 'closing chromium', browser.close())
      .catch((err) => failures.push(err));
  }
  if (server) {
    await server.stop().catch((err) => failures.push(err));
    if (failures.length) {
      fs.mkdirSync(artifacts, { recursive: true });
      fs.writeFileSync(path.join(artifacts, 'server.log'), server.log());
      process.stdout.write(`----- anvil serve log (${server.logPath}) -----\n${server.log()}`
        + `----- end of log -----\n`);
    }
    server.cleanup();
  }
  if (failures.length) {
    for (const err of failures)
      log(`FAIL ${name}: ${err.evidenceSaved ? err.message.split('\n')[0] : err.stack || err.message}`);
    log(`${name}: FAILED (artifacts in ${artifacts})`);
    process.exit(1);
  }
  log(`${name}: passed`);
  process.exit(0);
}
