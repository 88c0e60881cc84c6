// Scale-out in a real browser: two instances of the product on one real redis-server, the first
// stranger's page served by one instance and the second's by the other. They are paired through
// the shared queue, signal through two different signalers, and chat peer to peer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  WAIT_MS,
  connectAll,
  createErrorLog,
  formatErrors,
  launchBrowser,
  openPage,
  sendMessage,
  startServer,
  waitForMessage,
} from './lib/harness.mjs';

const TIMEOUT = { timeout: 90000 };
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of the test's own; resolves once it accepts connections. */
async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangers-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a page served by one instance chats with a page served by another', TIMEOUT, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url, ROOM_TICKET_SECRET: 'browser-cluster-secret-browser-cluster-secret' };
  const first = await startServer({ env });
  t.after(() => first.stop());
  const second = await startServer({ env });
  t.after(() => second.stop());
  assert.notEqual(first.port, second.port);

  const a = await openPage(browser, first.url, { label: 'instance 1', errors });
  const b = await openPage(browser, second.url, { label: 'instance 2', errors });

  await connectAll(a, b);
  await sendMessage(a, 'hello across instances');
  await waitForMessage(b, 'stranger', 'hello across instances');
  await sendMessage(b, 'and back again');
  await waitForMessage(a, 'stranger', 'and back again');
  // Close the pages before the servers stop, so they do not try to reconnect.
  await a.context().close();
  await b.context().close();
});

test('no console errors in the cluster pages', () => {
  assert.equal(errors.entries.length, 0, formatErrors(errors.entries));
});
