// browser.ui_mount — the UI mounts (docs/config.md#ui-mounts) in a real
// browser: a tiny bundle whose client.js reads globalThis.__SMITHERS_GATEWAY_UI__,
// renders its fields and calls the `health` RPC at boot.rpcPath with the
// operator token, exactly as an operator's app would. Asserts what a user
// sees: the boot config intact (a `</script>` prop shown as text, never run),
// the RPC answer, and the per-workflow mount at /workflows/deploy. Also
// checks the harness itself: a deliberately failing step leaves its
// screenshot in the artifacts dir, never in the committed tree.
//
//   tests/client/node_modules/.bin/node tests/browser/ui_mount.mjs --anvil build/anvil

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { browserTest, outsideCommittedTree, shoot, TOKENS } from './harness.mjs';

// A prop that would end the boot <script> element if the server did not
// write `<` as \u003c; if it ever ran, window.__pwned would be set.
const BANNER = '</script><script>window.__pwned = 1</script>';

// The bundle's entry (the shell always loads <mount>/__smithers_ui/client.js).
// Plain DOM, no framework: each boot field becomes an element whose
// data-field names it, the RPC answer goes into data-field="rpc-*".
const CLIENT_JS = `
const boot = globalThis.__SMITHERS_GATEWAY_UI__;
const root = document.getElementById('root');
const list = document.createElement('dl');
root.append(list);
function show(name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.dataset.field = name;
  dd.textContent = typeof value === 'string' ? value : JSON.stringify(value);
  list.append(dt, dd);
}
for (const k of ['apiVersion', 'kind', 'workflowKey', 'mountPath', 'rpcPath', 'wsPath', 'assetBasePath'])
  show(k, boot[k]);
for (const [k, v] of Object.entries(boot.props)) show('props.' + k, v);
try {
  const res = await fetch(boot.rpcPath + '/health', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + globalThis.__TEST_TOKEN__ },
    body: '{}',
  });
  const frame = await res.json();
  show('rpc-status', res.status);
  show('rpc-ok', frame.ok);
  show('rpc-apiVersion', frame.payload.apiVersion);
  show('rpc-healthy', frame.payload.ok);
} catch (err) {
  show('rpc-error', String(err));
}
console.log('ui booted: ' + boot.kind);
document.body.dataset.ready = 'yes';
`;

const files = {
  'ui-root/client.js': CLIENT_JS,
  'ui-deploy/client.js': CLIENT_JS,
};
const config = `ui:
  dir: ui-root
  title: Browser test
  props: { banner: ${JSON.stringify(BANNER)}, team: payments }
`;

await browserTest('ui_mount', { config, files, workflowConfig: { deploy: 'ui: { dir: ui-deploy }' } }, async (t) => {
  const page = await t.newPage();
  // The token reaches the app the way a login would: not through the server.
  await page.addInitScript((token) => { globalThis.__TEST_TOKEN__ = token; }, TOKENS.operator);
  const field = (name) => page.locator(`[data-field="${name}"]`).textContent();

  await t.step('the gateway mount boots the bundle', async () => {
    await page.goto(t.url('/'));
    await page.locator('body[data-ready="yes"]').waitFor();
    assert.equal(await page.title(), 'Browser test');
  });

  await t.step('the boot config reaches the app intact', async () => {
    assert.equal(await field('apiVersion'), 'v1');
    assert.equal(await field('kind'), 'gateway');
    assert.equal(await field('workflowKey'), 'null');
    assert.equal(await field('mountPath'), '/');
    assert.equal(await field('rpcPath'), '/v1/rpc');
    assert.equal(await field('wsPath'), '/');
    assert.equal(await field('assetBasePath'), '/__smithers_ui/');
    assert.equal(await field('props.team'), 'payments');
    // Shown as text, and the <script> inside it never ran.
    assert.equal(await field('props.banner'), BANNER);
    assert.equal(await page.evaluate(() => globalThis.__pwned), undefined);
  });

  await t.step('the app calls the health RPC with the operator token', async () => {
    assert.equal(await field('rpc-status'), '200');
    assert.equal(await field('rpc-ok'), 'true');
    assert.equal(await field('rpc-apiVersion'), 'v1');
    assert.equal(await field('rpc-healthy'), 'true');
    await shoot(page, 'ui-mount-gateway');
  });

  await t.step('a client-side route under the mount gets the same app', async () => {
    await page.goto(t.url('/runs/some-run'));
    await page.locator('body[data-ready="yes"]').waitFor();
    assert.equal(await field('kind'), 'gateway');
    assert.equal(await field('mountPath'), '/');
  });

  await t.step('the per-workflow mount at /workflows/deploy', async () => {
    await page.goto(t.url('/workflows/deploy'));
    await page.locator('body[data-ready="yes"]').waitFor();
    assert.equal(await page.title(), 'deploy | Anvil');
    assert.equal(await field('kind'), 'workflow');
    assert.equal(await field('workflowKey'), 'deploy');
    assert.equal(await field('mountPath'), '/workflows/deploy');
    assert.equal(await field('assetBasePath'), '/workflows/deploy/__smithers_ui/');
    assert.equal(await field('rpcPath'), '/v1/rpc');
    assert.equal(await field('rpc-ok'), 'true');
    await shoot(page, 'ui-mount-workflow');
  });

  // The harness's own check: a failing step saves a screenshot and the
  // console where the artifacts go, never into the committed tree.
  const failed = await t.step('deliberately failing step', async () => {
    await page.locator('[data-field="no-such-field"]').waitFor({ timeout: 500 });
  }, { expectFailure: true });
  await t.step('the failing step left its evidence in the artifacts dir only', async () => {
    assert.ok(failed.screenshot, 'a screenshot was taken');
    assert.ok(failed.screenshot.startsWith(t.artifacts + '/'), failed.screenshot);
    assert.ok(fs.statSync(failed.screenshot).size > 0);
    assert.ok(outsideCommittedTree(failed.screenshot), `${failed.screenshot} could be committed`);
    assert.match(fs.readFileSync(failed.console, 'utf8'), /console\.log: ui booted: workflow/);
  });
});
