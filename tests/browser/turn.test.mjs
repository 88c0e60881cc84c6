// TURN: two tabs whose peer connections may only use relayed candidates (as behind a network
// that blocks peer-to-peer traffic) chat through a real coturn, with the credentials the
// matchmaker put in `matched`; with credentials coturn does not accept they do not connect, and
// the page says so and offers Next.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS,
  connectAll,
  createErrorLog,
  formatErrors,
  launchBrowser,
  metricValue,
  sendMessage,
  session,
  waitForMessage,
  waitForMetric,
  waitForState,
} from './lib/harness.mjs';
import { describe, timeConnects } from './lib/timing.mjs';
import { startTurn } from './lib/turn.mjs';

const TIMEOUT = { timeout: 90000 };
const SECRET = 'turn-test-secret-turn-test-secret';
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Page init script: every RTCPeerConnection uses relayed candidates only, and is kept for inspection. */
function relayOnly() {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.__iceServers = [];
  window.RTCPeerConnection = class extends Original {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: 'relay' }, ...rest);
      window.__iceServers.push(config.iceServers);
      window.__pcs.push(this);
    }
  };
}

/** The local candidate type of the selected pair of the page's last peer connection. */
function selectedCandidateType(page) {
  return page.evaluate(async () => {
    const stats = await window.__pcs[window.__pcs.length - 1].getStats();
    let transport;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) transport = s; });
    const pair = transport && stats.get(transport.selectedCandidatePairId);
    return pair ? stats.get(pair.localCandidateId).candidateType : null;
  });
}

async function withTurn(t, secret) {
  const turn = await startTurn({ secret: SECRET });
  t.after(() => turn.stop());
  return { turn, env: { TURN_SECRET: secret, TURN_URLS: `${turn.url}?transport=udp,${turn.url}?transport=tcp` } };
}

test('two tabs that may only relay chat through coturn with the credentials from matched', TIMEOUT, async (t) => {
  const { turn, env } = await withTurn(t, SECRET);
  const s = await session(t, browser, errors, { env });
  const a = await s.open('A', { initScript: relayOnly });
  const b = await s.open('B', { initScript: relayOnly });

  await connectAll(a, b);
  await sendMessage(a, 'relayed hello from A');
  await waitForMessage(b, 'stranger', 'relayed hello from A');
  await sendMessage(b, 'relayed reply from B');
  await waitForMessage(a, 'stranger', 'relayed reply from B');

  for (const page of [a, b]) {
    assert.equal(await selectedCandidateType(page), 'relay');
    const servers = await page.evaluate(() => window.__iceServers[window.__iceServers.length - 1]);
    const entry = servers.at(-1);
    assert.match(entry.username, /^\d+:[0-9a-f-]{36}$/, JSON.stringify(servers));
  }
  assert.match(turn.log(), /session .*: (realm|usage)/i, 'coturn saw the sessions');
  // Both pages reported their connection: through a relay.
  await waitForMetric(s.url, 'matchmaker_connected_candidates_total{candidate_type="relay"}', (v) => v === 2);
  await waitForMetric(s.url, 'matchmaker_connect_seconds_count', (v) => v === 2);
});

test('with credentials coturn refuses, relay-only tabs do not connect and the page offers Next', TIMEOUT, async (t) => {
  const { turn, env } = await withTurn(t, 'a-secret-coturn-does-not-know-00000');
  const s = await session(t, browser, errors, { env });
  const a = await s.open('A', { initScript: relayOnly });
  const b = await s.open('B', { initScript: relayOnly });

  for (const page of [a, b]) await page.getByTestId('start').click();
  await Promise.all([a, b].map((page) => waitForState(page, 'ended', WAIT_MS + 15000)));
  for (const page of [a, b]) {
    const status = await page.getByTestId('status').textContent();
    assert.match(status, /Press Next/, status);
    assert.equal(await page.getByTestId('next').isEnabled(), true);
  }
  assert.match(turn.log(), /401|Unauthorized|cannot find credentials|check_stun_auth/i, 'coturn refused the credentials');
  // The page that gave up reported it (the other may hear first that its stranger left, and
  // then has nothing to report); nobody reported a connection.
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const reports = (outcome) => metricValue(text, `matchmaker_connection_reports_total{outcome="${outcome}"}`);
  assert.ok(reports('failed') + reports('timeout') >= 1, text);
  assert.equal(reports('connected'), 0);
});

const RUNS = Number(process.env.TIMING_RUNS || 5);

test(`time from Start to connected through coturn against direct, ${RUNS} runs each`, { timeout: 60000 + RUNS * 60000 }, async (t) => {
  const { env } = await withTurn(t, SECRET);
  const s = await session(t, browser, errors, { env });
  const direct = await timeConnects(s, RUNS);
  const relayed = await timeConnects(s, RUNS, { initScript: relayOnly });
  t.diagnostic(`direct (host candidates): ${describe(direct)}`);
  t.diagnostic(`through coturn (relay only): ${describe(relayed)}`);
  assert.equal(relayed.length, RUNS);
});

test('no console errors or uncaught exceptions in any page above', () => {
  assert.deepEqual(errors.entries, [], `console errors:\n${formatErrors(errors.entries)}`);
});
