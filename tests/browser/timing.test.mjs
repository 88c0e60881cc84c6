// How long from both Start clicks until both sides are connected: a figure
// printed for people to read, not an assertion.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createErrorLog, formatErrors, launchBrowser, session } from './lib/harness.mjs';
import { describe, timeConnects } from './lib/timing.mjs';

const RUNS = Number(process.env.TIMING_RUNS || 5);
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test(`time from Start to connected, ${RUNS} runs`, { timeout: 60000 + RUNS * 30000 }, async (t) => {
  const s = await session(t, browser, errors);
  const times = await timeConnects(s, RUNS);
  t.diagnostic(`Start -> connected (both sides), ${times.length} runs: ${describe(times)}`);
  assert.equal(times.length, RUNS);
});

test('no console errors or uncaught exceptions during the timing runs', () => {
  assert.deepEqual(errors.entries, [], `console errors:\n${formatErrors(errors.entries)}`);
});
