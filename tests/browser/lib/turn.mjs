// A coturn of a test's own (Debian's /usr/bin/turnserver), on loopback, checking the TURN REST
// API credentials the matchmaker issues (use-auth-secret), with no configuration file.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort, waitForTcp } from './redis.mjs';

export const TURNSERVER = process.env.TURNSERVER_PATH || '/usr/bin/turnserver';

/** Starts coturn with `secret`; resolves once it accepts TCP connections on its port. */
export async function startTurn({ secret }) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strangers-turn-'));
  let log = '';
  const child = spawn(TURNSERVER, [
    '-n', // no configuration file
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    '--realm=strangers.test',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    // Both browsers' relayed addresses are on loopback here, so they are each other's peers.
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    `--db=${path.join(dir, 'turndb')}`,
    `--pidfile=${path.join(dir, 'turnserver.pid')}`,
    '--log-file=stdout',
    '--simple-log',
    '--verbose',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => { log += chunk; });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { log += chunk; });
  await waitForTcp(port, 'turnserver', () => (child.exitCode !== null ? log || 'exited' : ''));
  return {
    url: `turn:127.0.0.1:${port}`,
    log: () => log,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
