// MatchmakerLink: the one connection to the matchmaker, kept up by itself.
//
// It opens a transport (transport.js), answers the server's keepalive, and when
// the connection drops it reconnects with exponential backoff and jitter (at once
// after 1012, the instance restarting) and, within the grace window the server
// announced in `ready`, sends `resume` with the latest token so that the user
// keeps its place in the queue or its stranger. It holds no chat state: it tells
// its owner (StrangerClient, the only state machine) what happened.
//
// handlers:
//   ready({clientId, resumeFailed})  a fresh client identity is live (first connect,
//                                    a resume that failed, or a drop past the grace)
//   resumed({clientId, state})       the old identity is back: state idle|queued|matched
//   message(msg)                     any other server message (queued, matched, ...)
//   down({code, attempt, delayMs, resuming})  the link dropped; retrying in delayMs
//   replaced()                       another connection resumed this client (4000)

import { autoTransport, backoffDelay } from './transport.js';

const GOODBYE_BY_SERVER = new Set([1000, 1001]); // the server forgot us: no resume
const RESTART = 1012;
const REPLACED = 4000;
const KEEPALIVE_LOST = 4001; // our close code for a dead socket: not a goodbye, so the server keeps us

export class MatchmakerLink {
  /**
   * @param {string} url
   * @param {object} opts reconnectBaseMs, reconnectCapMs, keepaliveMs, transport (factory)
   * @param {object} handlers see above
   */
  constructor(url, opts, handlers) {
    this.url = url;
    this.opts = opts;
    this.handlers = handlers;
    this.transportFactory = opts.transport || autoTransport;
    this.transport = null;
    this.settled = false; // ready (and resume, if any) answered: send() works
    this.clientId = null;
    this.token = null; // the latest resume token of our current identity
    this.graceMs = 0;
    this.awaySince = null; // when our identity lost its connection (null: not away)
    this.resuming = null; // {token, clientId} of the fresh identity, while a resume is in flight
    this.attempt = 0;
    this.timer = null;
    this.keepalive = null;
    this.awaitingPong = false;
    this.closed = true; // true until open(), and after close()
  }

  /** True while a drop is being recovered from (the link is down or resuming). */
  get recovering() {
    return !this.closed && !this.settled && this.awaySince !== null;
  }

  /** Connect (no-op when already connected or connecting). */
  open() {
    this.closed = false;
    if (this.transport || this.timer) return;
    this.#connect();
  }

  /** Send a message once the link is settled; returns false otherwise. */
  send(msg) {
    return this.settled && this.transport !== null && this.transport.send(msg);
  }

  /** Say goodbye (close code 1000: no grace window) and stop reconnecting. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.#stopKeepalive();
    const t = this.transport;
    this.transport = null;
    this.settled = false;
    this.resuming = null;
    this.awaySince = null;
    this.token = null;
    if (t) t.close(1000, 'bye');
  }

  #connect() {
    let t;
    try {
      t = this.transportFactory(this.url, {
        open: () => {},
        message: (msg) => {
          if (this.transport === t) this.#onMessage(msg);
        },
        close: (ev) => {
          if (this.transport === t) this.#onLost(ev.code);
        },
      });
    } catch (err) {
      this.closed = true;
      this.handlers.error?.({ code: 'bad-url', message: String(err && err.message) });
      return;
    }
    this.transport = t;
    this.settled = false;
  }

  #onMessage(msg) {
    this.awaitingPong = false; // any message shows the link is alive
    switch (msg.type) {
      case 'ready':
        return this.#onReady(msg);
      case 'resumed':
        if (!this.resuming) return; // not ours to answer
        this.resuming = null;
        this.token = typeof msg.resumeToken === 'string' ? msg.resumeToken : null;
        this.clientId = typeof msg.clientId === 'string' ? msg.clientId : this.clientId;
        this.#settle();
        this.handlers.resumed({ clientId: this.clientId, state: String(msg.state || 'idle') });
        return;
      case 'error':
        if ((msg.code === 'resume-failed' || msg.code === 'banned') && this.resuming) {
          // The socket carries on as the fresh client its own `ready` named.
          const fresh = this.resuming;
          this.resuming = null;
          this.token = fresh.token;
          this.clientId = fresh.clientId;
          this.#settle();
          this.handlers.ready({ clientId: this.clientId, resumeFailed: true });
          if (msg.code === 'banned') this.handlers.message(msg);
          return;
        }
        this.handlers.message(msg);
        return;
      case 'pong':
        return;
      default:
        this.handlers.message(msg);
    }
  }

  #onReady(msg) {
    const clientId = typeof msg.clientId === 'string' ? msg.clientId : null;
    const token = typeof msg.resumeToken === 'string' ? msg.resumeToken : null;
    const canResume = this.token && this.awaySince !== null && Date.now() - this.awaySince < this.graceMs;
    if (Number.isFinite(msg.resumeGraceSecs)) this.graceMs = msg.resumeGraceSecs * 1000;
    else if (!token) this.graceMs = 0;
    this.#startKeepalive();
    if (canResume) {
      this.resuming = { token, clientId };
      this.transport.send({ type: 'resume', token: this.token });
      return;
    }
    const lost = this.awaySince !== null;
    this.token = token;
    this.clientId = clientId;
    this.#settle();
    this.handlers.ready({ clientId, resumeFailed: lost });
  }

  #settle() {
    this.settled = true;
    this.awaySince = null;
    this.attempt = 0;
  }

  #onLost(code) {
    this.transport = null;
    const wasSettled = this.settled;
    this.settled = false;
    this.resuming = null; // a resume in flight may or may not have happened: try again
    this.#stopKeepalive();
    if (this.closed) return;
    if (code === REPLACED) {
      this.closed = true;
      this.token = null;
      this.awaySince = null;
      this.handlers.replaced();
      return;
    }
    if (GOODBYE_BY_SERVER.has(code)) {
      this.token = null; // nothing to resume
      this.awaySince = null;
    } else if (this.awaySince === null && (wasSettled || this.token)) {
      this.awaySince = Date.now();
    }
    const delay = code === RESTART ? 0 : backoffDelay(this.attempt, this.opts.reconnectBaseMs, this.opts.reconnectCapMs);
    this.attempt += 1;
    const resuming = Boolean(this.token && this.awaySince !== null && Date.now() - this.awaySince < this.graceMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.#connect();
    }, delay);
    this.handlers.down({ code, attempt: this.attempt, delayMs: Math.round(delay), resuming });
  }

  // An app-level ping each period; a ping still unanswered a period later means
  // the link is dead without knowing it. (Counting ticks rather than elapsed
  // time keeps this right when a background tab's timers are throttled.)
  #startKeepalive() {
    this.#stopKeepalive();
    const t = this.transport;
    this.keepalive = setInterval(() => {
      if (this.transport !== t) return;
      if (this.awaitingPong) {
        t.close(KEEPALIVE_LOST, 'keepalive timeout');
        this.#onLost(1006);
        return;
      }
      this.awaitingPong = true;
      t.send({ type: 'ping' });
    }, this.opts.keepaliveMs);
  }

  #stopKeepalive() {
    clearInterval(this.keepalive);
    this.keepalive = null;
    this.awaitingPong = false;
  }
}
