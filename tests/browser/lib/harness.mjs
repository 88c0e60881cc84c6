// Shared helpers for the browser tests: start the real binary, launch
// Chromium, open pages that record console errors, and wait on conditions.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const TEST_DIR = path.resolve(here, '..');
export const ARTIFACTS = path.join(TEST_DIR, 'artifacts');
export const BIN = path.resolve(TEST_DIR, process.env.STRANGERS_BIN || '../../target/release/strangers');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Generous upper bound for anything that should take well under a second. */
export const WAIT_MS = 20000;

const READY_LINE = /^open (http:\/\/\S+?)\/? in two browser tabs to try it$/m;

/**
 * Spawn the all-in-one runner on free ports and resolve once it prints its
 * "open http://localhost:PORT/ ..." line. `stop()` sends SIGTERM and waits.
 */
export function startServer({ env = {}, port = 0 } = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`strangers binary not found at ${BIN}: build it first (cargo build --release) or set STRANGERS_BIN`);
  }
  const child = spawn(BIN, [], {
    env: { ...process.env, PORT: String(port), SIGNALER_PORT: '0', RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its ready line in ${WAIT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`)), WAIT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const m = READY_LINE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal})\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
  return ready.then((url) => ({
    url,
    port: Number(new URL(url).port),
    signalerPort: Number((/^signaler listening on \S+:(\d+)$/m.exec(stdout) || [])[1]) || null,
    output: () => ({ stdout, stderr }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000));
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
      return exited;
    },
  }));
}

/**
 * Launch headless Chromium with every flag from shared/notes/browser-tests.md.
 * `hosts`: more host names or addresses the pages use (each needs its resolver EXCLUDE).
 */
export async function launchBrowser({ hosts = [] } = {}) {
  // Chromium on this kind of machine now and then dies with SIGSEGV while starting, before any
  // page exists: that is the browser's start-up, not the product, so it gets two more tries.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startChromium(hosts);
    } catch (err) {
      if (attempt >= LAUNCH_ATTEMPTS) throw err;
      console.error(`# Chromium did not start (try ${attempt} of ${LAUNCH_ATTEMPTS}): ${String(err).split('\n')[0]}`);
    }
  }
}

/** How many times a Chromium that crashes while starting is started again. */
const LAUNCH_ATTEMPTS = 3;

function startChromium(hosts) {
  const excluded = ['localhost', '127.0.0.1', ...hosts].map((h) => `EXCLUDE ${h}`).join(' , ');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', // required as root
      '--allow-loopback-in-peer-connection', // gather 127.0.0.1 candidates
      '--use-fake-device-for-media-stream', // fake camera and microphone
      '--use-fake-ui-for-media-stream', // grant the camera permission (also un-hides host candidates)
      `--host-resolver-rules=MAP * ~NOTFOUND , ${excluded}`,
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A console-error collector shared by the tests of one file. Each page
 * reports `console` messages of type error and uncaught page errors into it.
 */
export function createErrorLog() {
  const entries = [];
  return {
    entries,
    watch(page, label) {
      page.on('console', (msg) => {
        if (msg.type() === 'error') entries.push({ label, kind: 'console', text: msg.text(), location: msg.location() });
      });
      page.on('pageerror', (err) => entries.push({ label, kind: 'pageerror', text: String(err && err.stack ? err.stack : err) }));
    },
  };
}

/** Open the chat page in a fresh browser context (its own storage, like another person). */
export async function openPage(browser, url, { label, errors, viewport = { width: 1280, height: 800 }, colorScheme = 'light', initScript } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  if (errors) errors.watch(page, label || 'page');
  if (initScript) await page.addInitScript(initScript);
  await page.goto(url);
  await page.getByTestId('start').waitFor();
  return page;
}

export const byTestId = (id) => `[data-testid="${id}"]`;

/** Wait until the page's status line reports `state` (idle, searching, connecting, connected, ended, reconnecting). */
export function waitForState(page, state, timeout = WAIT_MS) {
  return page.waitForSelector(`${byTestId('status')}[data-state="${state}"]`, { timeout });
}

/** Press Start on each page and wait until all of them are connected. */
export async function connectAll(...pages) {
  for (const page of pages) await page.getByTestId('start').click();
  await Promise.all(pages.map((page) => waitForState(page, 'connected')));
}

/** Type a message and press Send. */
export async function sendMessage(page, text) {
  await page.getByTestId('message-input').fill(text);
  await page.getByTestId('send').click();
}

/** Wait until a chat message by `author` ('me' | 'stranger') containing `text` is shown. */
export function waitForMessage(page, author, text, timeout = WAIT_MS) {
  return page.waitForFunction(
    ([a, t]) => {
      const log = document.querySelector('[data-testid="messages"]');
      return [...log.children].some((el) => el.dataset.author === a && el.textContent.includes(t));
    },
    [author, text],
    { timeout },
  );
}

/** Poll `GET /api/stats` until `predicate(stats)` holds. */
export async function waitForStats(baseUrl, predicate, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    const res = await fetch(`${baseUrl}/api/stats`);
    last = await res.json();
    if (predicate(last)) return last;
    if (Date.now() > deadline) throw new Error(`stats condition not met in ${timeout} ms; last ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A sample's value in the text of `GET /metrics`, or null. */
export function metricValue(text, sample) {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : null;
}

/** Poll `GET /metrics` of `baseUrl` until `sample`'s value satisfies `predicate`; returns it. */
export async function waitForMetric(baseUrl, sample, predicate, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = metricValue(await (await fetch(`${baseUrl}/metrics`)).text(), sample);
    if (value !== null && predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`${sample} never met the condition in ${timeout} ms; last ${value}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether a console entry is a connection the page tried while `host:ports` was down: a
 * WebSocket to `/ws`, or its long-polling fallback to `/lp` (both logged by the browser itself).
 */
export function isRefusedConnection(entry, host, ports) {
  if (entry.kind !== 'console') return false;
  const at = `${host.replaceAll('.', '\\.')}:(${ports.join('|')})`;
  if (new RegExp(`^WebSocket connection to 'ws://${at}/ws' failed`).test(entry.text)) return true;
  const url = entry.location?.url || '';
  return /^Failed to load resource: net::ERR_[A-Z_]+$/.test(entry.text) && new RegExp(`^http://${at}/lp`).test(url);
}

export function formatErrors(entries) {
  return entries.map((e) => `[${e.label}] ${e.kind}: ${e.text}${e.location && e.location.url ? ` (${e.location.url}:${e.location.lineNumber})` : ''}`).join('\n');
}

/**
 * One test's world: a fresh server and the pages opened on it. Everything is
 * closed when the test ends (pages first, so the server sees clean leaves).
 */
export async function session(t, browser, errors, serverOptions) {
  const server = await startServer(serverOptions);
  const pages = [];
  t.after(async () => {
    await Promise.all(pages.map((p) => p.context().close()));
    await server.stop();
  });
  return {
    server,
    url: server.url,
    async open(label, options = {}) {
      const page = await openPage(browser, server.url, { label: `${t.name}: ${label}`, errors, ...options });
      pages.push(page);
      return page;
    },
  };
}
