// A redis-server of a test's own, for the tests that run several instances on one Redis.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { WAIT_MS } from './harness.mjs';

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:`port` accepts TCP connections; `failed()` (or WAIT_MS) gives up, naming `what`. */
export async function waitForTcp(port, what, failed = () => '') {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    const why = failed();
    if (why || Date.now() > deadline) throw new Error(`${what} did not start\n${why}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A redis-server of the test's own; resolves once it accepts connections. */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangers-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir], {
    stdio: 'ignore',
  });
  await waitForTcp(port, 'redis-server');
  return {
    url: `redis://127.0.0.1:${port}`,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
