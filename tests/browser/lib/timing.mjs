// Start -> connected, measured in real tabs: figures printed for people to read.

import { waitForState, waitForStats } from './harness.mjs';

// Record (wall clock) when the status line first says "connected".
function markConnected() {
  window.__connectedAt = null;
  const status = document.querySelector('[data-testid="status"]');
  new MutationObserver(() => {
    if (window.__connectedAt === null && status.dataset.state === 'connected') window.__connectedAt = Date.now();
  }).observe(status, { attributes: true, attributeFilter: ['data-state'] });
}

/**
 * `runs` pairs of fresh tabs on session `s` (opened with `openOptions`): the time from both Start
 * clicks until both sides are connected, in ms, sorted.
 */
export async function timeConnects(s, runs, openOptions = {}) {
  const times = [];
  for (let run = 0; run < runs; run += 1) {
    const a = await s.open(`A${run}`, openOptions);
    const b = await s.open(`B${run}`, openOptions);
    await Promise.all([a, b].map((p) => p.evaluate(markConnected)));

    const t0 = Date.now();
    await Promise.all([a.getByTestId('start').click(), b.getByTestId('start').click()]);
    await Promise.all([waitForState(a, 'connected'), waitForState(b, 'connected')]);
    const ends = await Promise.all([a, b].map((p) => p.evaluate(() => window.__connectedAt)));
    times.push(Math.max(...ends) - t0);

    await Promise.all([a, b].map((p) => p.context().close()));
    await waitForStats(s.url, (st) => st.online === 0); // next run starts from an empty server
  }
  return times.sort((x, y) => x - y);
}

/** "median M ms, min ms, max ms [all]" of sorted times. */
export function describe(times) {
  const mid = times.length / 2;
  const median = times.length % 2 ? times[(times.length - 1) / 2] : (times[mid - 1] + times[mid]) / 2;
  return `median ${median} ms, min ${times[0]} ms, max ${times.at(-1)} ms [${times.join(', ')}]`;
}
