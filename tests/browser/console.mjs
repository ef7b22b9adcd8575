// browser.console — the operator console (docs/console.md) as an operator
// uses it, in Debian's chromium: sign in with the keyboard (a bad token is
// refused, the good one kept in session storage only), health and version,
// launch the example deploy workflow from the form its declared inputs
// build, watch it reach the approval live, approve it, watch it finish and
// read its outputs, events and diff; run a schedule now; a viewer is told
// why a launch is refused; the page at phone width. The harness fails the
// test on any page error or console error (a CSP violation is one).
//
// With ANVIL_SCREENSHOT_DIR set it refreshes docs/console/*.png:
//   ANVIL_SCREENSHOT_DIR=docs/console tests/client/node_modules/.bin/node \
//     tests/browser/console.mjs --anvil build/anvil

import assert from 'node:assert/strict';
import { browserTest, shoot, TOKENS } from './harness.mjs';

const SHA = 'e2e0c0ffee';
// A schedule that does not fire by itself during the test (Feb 29th only).
const workflowConfig = { 'fan-out': 'schedule: "0 3 29 2 *"' };

await browserTest('console', { workflowConfig }, async (t) => {
  const page = await t.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const main = page.locator('main');
  let runId = null;

  await t.step('the sign-in form takes the keyboard, and refuses a bad token', async () => {
    await page.goto(t.url('/console'));
    await page.locator('#token:focus').waitFor();
    await shoot(page, 'signin');
    t.allowErrors(/status of 401/);   // the refused token's RPC answer
    await page.keyboard.type('not-a-token');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Sign-in failed: Unauthorized' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  await t.step('signing in shows health, version, identity and the live connection', async () => {
    await page.locator('#token').fill(TOKENS.operator);
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=live].live-live').waitFor();
    const health = await page.locator('[data-testid=health]').textContent();
    assert.match(health, /^healthy · API v1 · protocol 1 · up /);
    assert.equal(await page.locator('[data-testid=identity]').textContent(), 'user:browser-operator (operator)');
    // The token: in this tab's session storage, nowhere else.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('anvil.console.token')), TOKENS.operator);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.equal((await t.context.cookies()).length, 0);
    assert.ok(!page.url().includes(TOKENS.operator));
    await main.getByText('No runs yet').waitFor();
  });

  await t.step('the sections are reachable with the keyboard', async () => {
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 15 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.dataset?.route === 'workflows');
    }
    assert.ok(reached, 'Tab never reached the Workflows link');
    await page.keyboard.press('Enter');
    await page.locator('[data-workflow=deploy]').waitFor();
    assert.equal(await page.locator('a[aria-current=page]').textContent(), 'Workflows');
  });

  await t.step('the launch form is built from the declared inputs', async () => {
    const card = page.locator('[data-workflow=deploy]');
    const sha = card.getByLabel('sha');
    assert.equal(await sha.getAttribute('type'), 'text');
    assert.equal(await sha.evaluate((el) => el.required), true);
    await card.getByText('The commit to build').waitFor();
    await shoot(page, 'workflows');
    // Required and empty: the browser's own validation stops the launch.
    await card.getByRole('button', { name: 'Launch deploy' }).click();
    assert.equal(await sha.evaluate((el) => el.validity.valueMissing), true);
    assert.match(page.url(), /#\/workflows$/);
    await sha.fill(SHA);
    await card.getByRole('button', { name: 'Launch deploy' }).click();
    await page.waitForURL(/#\/runs\/run_/);
    runId = decodeURIComponent(page.url().split('#/runs/')[1]);
  });

  await t.step('the run reaches the approval, live', async () => {
    await main.getByRole('heading', { name: `Run ${runId}` }).waitFor();
    await page.locator('[data-testid=run-status]').getByText('waiting-approval').waitFor();
    const tree = page.locator('[data-testid=tree]');
    await tree.locator('li[data-node=build][data-state=finished]').waitFor();
    await tree.locator('li[data-node=approve][data-state=waiting]').waitFor();
    assert.match(await tree.locator('li[data-node=build] > .node .meta').textContent(), /1 attempt/);
    await page.locator('[data-testid=events]').getByText('approval.requested approve').waitFor();
    await page.locator('[data-output=build]').getByText('"artifact": "app.tar"').waitFor();
    await page.getByText('add BUILT').waitFor();
    await shoot(page, 'run-waiting');
  });

  await t.step('the approval is listed, with a count', async () => {
    await page.locator('nav a[data-route=approvals] .count').getByText('1').waitFor();
    await page.locator('nav a[data-route=approvals]').click();
    const card = page.locator(`[data-approval="${runId}/approve"]`);
    await card.getByText('Ship it?').waitFor();
    await shoot(page, 'approvals');
    await page.goBack();
  });

  await t.step('approved on the run page, the run finishes live', async () => {
    const card = page.locator(`[data-approval="${runId}/approve"]`);
    await card.getByLabel('Note').fill('ship it from the browser');
    await card.getByRole('button', { name: 'Approve' }).click();
    // No reload: the run's own WebSocket brings every change.
    await page.locator('[data-testid=run-status]').getByText('finished').waitFor();
    await page.locator('[data-output=tag]').getByText(`"tag": "v-${SHA}"`).waitFor();
    await page.locator('[data-output=notify]').getByText(`"message": "shipped ${SHA}"`).waitFor();
    for (const node of ['approve', 'notify', 'tag', 'sequence@root'])
      await page.locator(`li[data-node="${node}"][data-state=finished]`).waitFor();
    await page.locator('[data-testid=events]').getByText('run.completed').waitFor();
    await page.locator('[data-testid=events]').getByText('approval.decided approve').waitFor();
    await page.locator('nav a[data-route=approvals] .count').getByText('0').waitFor();
    await page.locator('#rewind-frame').waitFor();
    await shoot(page, 'run-finished');
  });

  await t.step('the runs list shows it finished', async () => {
    await page.locator('nav a[data-route=runs]').click();
    const row = page.locator(`tr[data-run="${runId}"]`);
    await row.getByText('finished').waitFor();
    await shoot(page, 'runs');
  });

  await t.step('the pages fit a phone-width screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of ['#/runs', `#/runs/${encodeURIComponent(runId)}`, '#/workflows', '#/approvals']) {
      await page.goto(t.url(`/console${hash}`));
      await main.locator('h2').first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash} is ${overflow}px wider than the screen`);
    }
    await page.goto(t.url(`/console#/runs/${encodeURIComponent(runId)}`));
    await page.locator('[data-output=tag]').waitFor();
    await shoot(page, 'phone-run');
    await page.setViewportSize({ width: 1280, height: 800 });
  });
  await t.step('a schedule runs now', async () => {
    await page.locator('nav a[data-route=schedules]').click();
    const row = page.locator('tr[data-cron="gateway:fan-out"]');
    await row.getByText('0 3 29 2 *').waitFor();
    await row.getByRole('button', { name: 'Run gateway:fan-out now' }).click();
    const started = main.getByRole('status').filter({ hasText: 'from gateway:fan-out' });
    await started.waitFor();
    await shoot(page, 'schedules');
    await started.getByRole('link').click();
    await page.locator('[data-testid=run-status]').getByText('finished').waitFor();
    await page.locator('[data-output=summary]').getByText('"lint": "ok"').waitFor();
  });

  await t.step('a viewer is told why a launch is refused', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#token').fill(TOKENS.viewer);
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=identity]').getByText('user:browser-viewer (viewer)').waitFor();
    await page.locator('nav a[data-route=workflows]').click();
    const card = page.locator('[data-workflow=deploy]');
    await card.getByLabel('sha').fill('nope');
    t.allowErrors(/status of 403/);
    await card.getByRole('button', { name: 'Launch deploy' }).click();
    await card.getByRole('alert').getByText(/Launch refused: Forbidden/).waitFor();
    // Without observability:read there is no tree, but every node is listed.
    await page.goto(t.url(`/console#/runs/${encodeURIComponent(runId)}`));
    await page.getByText('the tree needs the observability:read scope').waitFor();
    for (const node of ['build', 'approve', 'notify', 'tag'])
      await page.locator(`li[data-node="${node}"][data-state=finished]`).waitFor();
    await page.locator('[data-output=tag]').getByText(`"tag": "v-${SHA}"`).waitFor();
  });
});
