// How long from both Start clicks until both sides are connected: a figure
// printed for people to read, not an assertion.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createErrorLog, formatErrors, launchBrowser, session, waitForState, waitForStats } from './lib/harness.mjs';

const RUNS = Number(process.env.TIMING_RUNS || 5);
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

// Record (wall clock) when the status line first says "connected".
function markConnected() {
  window.__connectedAt = null;
  const status = document.querySelector('[data-testid="status"]');
  new MutationObserver(() => {
    if (window.__connectedAt === null && status.dataset.state === 'connected') window.__connectedAt = Date.now();
  }).observe(status, { attributes: true, attributeFilter: ['data-state'] });
}

test(`time from Start to connected, ${RUNS} runs`, { timeout: 60000 + RUNS * 30000 }, async (t) => {
  const s = await session(t, browser, errors);
  const times = [];
  for (let run = 0; run < RUNS; run += 1) {
    const a = await s.open(`A${run}`);
    const b = await s.open(`B${run}`);
    await Promise.all([a, b].map((p) => p.evaluate(markConnected)));

    const t0 = Date.now();
    await Promise.all([a.getByTestId('start').click(), b.getByTestId('start').click()]);
    await Promise.all([waitForState(a, 'connected'), waitForState(b, 'connected')]);
    const ends = await Promise.all([a, b].map((p) => p.evaluate(() => window.__connectedAt)));
    times.push(Math.max(...ends) - t0);

    await Promise.all([a, b].map((p) => p.context().close()));
    await waitForStats(s.url, (st) => st.online === 0); // next run starts from an empty server
  }
  times.sort((x, y) => x - y);
  const median = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  const line = `Start -> connected (both sides), ${times.length} runs: median ${median} ms, min ${times[0]} ms, max ${times.at(-1)} ms [${times.join(', ')}]`;
  t.diagnostic(line);
  assert.equal(times.length, RUNS);
});

test('no console errors or uncaught exceptions during the timing runs', () => {
  assert.deepEqual(errors.entries, [], `console errors:\n${formatErrors(errors.entries)}`);
});
