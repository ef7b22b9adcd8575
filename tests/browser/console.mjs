// browser.console — the operator console (docs/console.md) as an operator
// uses it, in Debian's chromium: sign in with the keyboard (a bad token is
// refused, the good one kept in session storage only), health and version,
// launch the example deploy workflow from the form its declared inputs
// build, watch it reach the approval live, approve it, watch it finish and
// read its outputs, events and diff; rewind it to the approval, resume and
// approve it again; run a schedule now; a viewer is told
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
  let allow401 = null;
  let waitingFrame = null;

  await t.step('the sign-in form takes the keyboard, and refuses a bad token', async () => {
    await page.goto(t.url('/console'));
    await page.locator('#token:focus').waitFor();
    await shoot(page, 'signin');
    // The policy's Trusted Types: the browser itself refuses an HTML string.
    const allowTT = t.allowErrors(/requires 'TrustedHTML' assignment/);
    const sink = await page.evaluate(() => {
      try { document.createElement('div').innerHTML = '<b>x</b>'; return 'accepted'; } catch (e) { return e.name; }
    });
    assert.equal(sink, 'TypeError');
    allowTT();
    allow401 = t.allowErrors(/status of 401/);   // the refused token's RPC answer
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
    allow401();
  });

  await t.step('the sections are reachable with the keyboard', async () => {
    // From the top of a fresh page (the session survives a reload), the
    // first stop is the skip link; it moves focus, not the route.
    await page.reload();
    await page.locator('[data-testid=live].live-live').waitFor();
    const before = page.url();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    assert.equal(page.url(), before);
    await main.getByText('No runs yet').waitFor();
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
    // The frame the run waits in: what the rewind below goes back to.
    await page.locator('#rewind-frame option').first().waitFor({ state: 'attached' });
    waitingFrame = await page.locator('#rewind-frame').inputValue();
    assert.match(waitingFrame, /^[1-9][0-9]*$/);
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

  await t.step('rewound to the approval, resumed and approved again, it finishes again', async () => {
    page.once('dialog', (d) => d.accept());
    await page.locator('#rewind-frame').selectOption(waitingFrame);
    await page.getByRole('button', { name: 'Rewind' }).click();
    await main.getByRole('status').filter({ hasText: `Rewound to frame ${waitingFrame}:` }).waitFor();
    await page.locator('[data-testid=run-status]').getByText('waiting-approval').waitFor();
    await page.locator('li[data-node=tag][data-state=pending]').waitFor();
    const card = page.locator(`[data-approval="${runId}/approve"]`);
    await card.waitFor();
    await page.getByRole('button', { name: 'Resume' }).click();
    await main.getByRole('status').filter({ hasText: 'Resume requested.' }).waitFor();
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.locator('[data-testid=run-status]').getByText('finished').waitFor();
    await page.locator('[data-output=tag]').getByText(`"tag": "v-${SHA}"`).waitFor();
    await page.locator('[data-testid=events]').getByText('run.time_travel_jumped').waitFor();
  });

  await t.step('the runs list shows it finished', async () => {
    await page.locator('nav a[data-route=runs]').click();
    const row = page.locator(`tr[data-run="${runId}"]`);
    await row.getByText('finished').waitFor();
    await shoot(page, 'runs');
  });

  await t.step('the pages fit a phone-width screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // Each page with its content loaded, the widest there is.
    const views = {
      '#/runs': '[data-testid=runs]',
      [`#/runs/${encodeURIComponent(runId)}`]: '[data-output=tag]',
      '#/workflows': '[data-workflow=deploy]',
      '#/approvals': '[data-testid=approvals-body] .notice',
      '#/schedules': 'tr[data-cron]',
    };
    for (const [hash, content] of Object.entries(views)) {
      await page.goto(t.url(`/console${hash}`));
      await page.locator(content).first().waitFor();
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
    // From here on the viewer's token is refused what needs more than
    // run:read (the schedules it lands on, the launch, the tree).
    t.allowErrors(/status of 403/);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#token').fill(TOKENS.viewer);
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=identity]').getByText('user:browser-viewer (viewer)').waitFor();
    await page.locator('nav a[data-route=workflows]').click();
    const card = page.locator('[data-workflow=deploy]');
    await card.getByLabel('sha').fill('nope');
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
