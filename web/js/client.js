// StrangerClient: the reusable browser client for the Strangers service.
//
// It hides the two-socket dance of the wire contract (1.1, with resume): the
// matchmaker link (ready -> available -> queued -> matched, resumed after a
// drop), the signaler socket (join, then offer/answer/ice relayed between the
// two peers), the RTCPeerConnection and its data channel. Callers see a small
// state machine and a few events; see docs/client.md for the API.
//
// The parts, one job each:
//   transport.js        how messages reach the matchmaker (WebSocket today)
//   matchmaker-link.js  the matchmaker connection: keepalive, reconnect, resume
//   match.js            one stranger: peer connection, data channel, signaler
//   client.js           this file: the only state machine
//
// A Match reports through callbacks that check it is still the current one,
// so a stale callback from a previous stranger can never touch the next one.

import { MatchmakerLink } from './matchmaker-link.js';
import { Match } from './match.js';

/**
 * Client states. `reconnecting` means the matchmaker connection dropped while
 * searching or chatting and is being resumed; a chat in progress stays up.
 */
export const State = Object.freeze({
  IDLE: 'idle',
  SEARCHING: 'searching',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  ENDED: 'ended',
  RECONNECTING: 'reconnecting',
});

/** Longest chat text sent or shown, in characters (code points). */
export const MAX_TEXT_LENGTH = 2000;

/** The contract's limits on interests: how many, and how long each (characters). */
export const MAX_INTERESTS = 10;
export const MAX_INTEREST_CHARS = 32;

/** Why a stranger may be reported. */
export const REPORT_REASONS = Object.freeze(['spam', 'harassment', 'nudity', 'underage', 'other']);

/** Longest note a report may carry, in characters. */
export const MAX_REPORT_NOTE = 500;

/**
 * Interests as the server takes them: trimmed, lower-cased, 1 to 32 characters,
 * each once, at most 10.
 */
export function normalizeInterests(list) {
  const out = [];
  for (const raw of Array.isArray(list) ? list : []) {
    if (typeof raw !== 'string') continue;
    const interest = capText(raw.trim().toLowerCase(), MAX_INTEREST_CHARS);
    if (interest && !out.includes(interest)) out.push(interest);
    if (out.length === MAX_INTERESTS) break;
  }
  return out;
}

const TRANSITIONS = {
  idle: ['searching'],
  searching: ['connecting', 'idle', 'reconnecting', 'searching'],
  connecting: ['connected', 'ended', 'searching', 'idle', 'reconnecting'],
  connected: ['ended', 'searching', 'idle', 'reconnecting'],
  ended: ['searching', 'connecting', 'idle', 'reconnecting', 'ended'],
  reconnecting: ['searching', 'idle', 'connecting', 'connected', 'ended'],
};

const DEFAULTS = {
  connectTimeoutMs: 15000, // matched -> data channel handshake done
  helloIntervalMs: 250, // hello re-send period until the peer answers
  reconnectBaseMs: 500,
  reconnectCapMs: 10000,
  keepaliveMs: 20000, // app-level ping period on the matchmaker link
  maxFrameBytes: 16384, // data channel frames larger than this are dropped
  verdictMs: 3000, // channel closed / ICE failed: wait this long for the servers' word
  disconnectedMs: 3000, // ICE disconnected this long: restart ICE
  resumeGraceSecs: 20, // until `ready` says otherwise
};

/** The matchmaker WebSocket URL for the page's own host: ws: for http pages, wss: for https. */
export function defaultMatchmakerUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/** Fetch `GET /api/stats` -> `{online, waiting, rooms}`. Rejects on HTTP or network failure. */
export async function fetchStats(base = '', { signal } = {}) {
  const res = await fetch(`${base}/api/stats`, { cache: 'no-store', signal });
  if (!res.ok) throw new Error(`stats: HTTP ${res.status}`);
  const body = await res.json();
  return {
    online: Number(body.online) || 0,
    waiting: Number(body.waiting) || 0,
    rooms: Number(body.rooms) || 0,
  };
}

/** Trim text to at most `max` code points without splitting a surrogate pair. */
export function capText(text, max = MAX_TEXT_LENGTH) {
  if (text.length <= max) return text;
  return Array.from(text).slice(0, max).join('');
}

export class StrangerClient extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.matchmakerUrl] defaults to `/ws` on the page's host
   * @param {MediaStream|null} [options.media] camera/microphone stream to send, if any
   * @param {number} [options.connectTimeoutMs] give up on a stranger after this long (15 s)
   * @param {Function} [options.transport] matchmaker transport factory (see transport.js)
   */
  constructor(options = {}) {
    super();
    this.opts = { ...DEFAULTS, ...options };
    this.matchmakerUrl = options.matchmakerUrl || defaultMatchmakerUrl();
    this.media = options.media || null;
    this.state = State.IDLE;
    this.reason = null;
    this.clientId = null;
    this.wantSearch = false; // the user's intent: searching/chatting vs stopped
    this.match = null; // current Match
    this.interests = normalizeInterests(options.interests); // sent with available/next
    this.bannedUntil = 0; // ms since the epoch; set by a `banned` error
    this.link = new MatchmakerLink(this.matchmakerUrl, this.opts, {
      ready: (d) => this.#onFresh(d),
      resumed: (d) => this.#onResumed(d),
      message: (msg) => this.#onMatchmaker(msg),
      down: (d) => this.#onLinkDown(d),
      replaced: () => this.#onLinkReplaced(),
      error: (d) => this.#emit('error', { ...d, source: 'client' }),
    });
    this.matchOpts = {
      ...this.opts,
      resumeGraceMs: () => (this.link.graceMs || this.opts.resumeGraceSecs * 1000),
      linkRecovering: () => this.link.recovering,
    };
  }

  // ---- public API --------------------------------------------------------

  /**
   * Open the matchmaker link without searching, so that this visitor counts as
   * online and a later start() skips the handshake. start() does it when needed.
   */
  connect() {
    this.link.open();
  }

  /** True while a chat is open and send() would deliver (also while reconnecting). */
  get chatting() {
    return this.match !== null && this.match.chatting;
  }

  /** Start looking for a stranger (no-op unless idle). */
  start() {
    if (this.state !== State.IDLE) return;
    this.wantSearch = true;
    this.#setState(State.SEARCHING, 'start');
    this.link.open();
    this.#ask('available'); // or on `ready`
  }

  /**
   * What this user would like to talk about (see normalizeInterests); sent with
   * the next `available` or `next`. Returns the list as it will be sent.
   */
  setInterests(list) {
    this.interests = normalizeInterests(list);
    return this.interests;
  }

  /**
   * Never meet the current (or, right after a chat ended, the last) stranger
   * again; a chat in progress ends as next() ends it. Resolves nothing: the
   * server answers with a `blocked` event.
   */
  block() {
    this.#refuseStranger({ type: 'block' });
  }

  /**
   * Report the current (or last) stranger for `reason` (one of REPORT_REASONS)
   * with an optional note: a block, plus a report the operators read.
   */
  report(reason, note) {
    if (!REPORT_REASONS.includes(reason)) throw new TypeError(`reason must be one of ${REPORT_REASONS.join(', ')}`);
    const msg = { type: 'report', reason };
    if (typeof note === 'string' && note.trim()) msg.note = capText(note.trim(), MAX_REPORT_NOTE);
    this.#refuseStranger(msg);
  }

  /** Leave the current stranger (if any) and look for the next one. */
  next() {
    if (this.state === State.IDLE) return this.start();
    if (this.state === State.RECONNECTING) return;
    this.wantSearch = true;
    const hadMatch = this.match !== null || this.state === State.ENDED;
    this.#endMatch();
    this.#setState(State.SEARCHING, 'next');
    if (!this.link.settled) return this.link.open();
    // While merely searching there is nobody to skip: stay in the queue.
    if (hadMatch) this.#ask('next');
  }

  /** Leave the queue and any stranger; back to idle. The matchmaker link stays open. */
  stop() {
    if (this.state === State.IDLE) return;
    this.wantSearch = false;
    this.#endMatch();
    this.link.send({ type: 'leave' }); // when down, sent after the resume
    this.#setState(State.IDLE, 'stop');
  }

  /** Stop and close every socket with a goodbye (no resume window); start() reopens. */
  close() {
    this.stop();
    this.link.close();
  }

  /**
   * Send a chat message to the stranger. Returns the text actually sent (capped at
   * MAX_TEXT_LENGTH) or null when no chat is open or the text is blank.
   */
  send(text) {
    const m = this.match;
    if (!m || !m.chatting || (this.state !== State.CONNECTED && this.state !== State.RECONNECTING)) return null;
    if (typeof text !== 'string' || text.trim() === '') return null;
    const capped = capText(text);
    return m.send(capped) ? capped : null;
  }

  /**
   * Use `stream` (camera/microphone) for this and later strangers, or null for text only.
   * During a chat the change is renegotiated with the stranger.
   */
  setMedia(stream) {
    this.media = stream || null;
    const m = this.match;
    if (m && m.pc && m.tracksAttached) m.applyMedia(this.media);
    else if (m) m.media = this.media;
  }

  /** `available` or `next`, with the interests. */
  #ask(type) {
    return this.link.send({ type, interests: this.interests });
  }

  /** Send `block` or `report`; a chat in progress ends, and the server queues us again. */
  #refuseStranger(msg) {
    if (this.state === State.IDLE || this.state === State.RECONNECTING) return;
    const inChat = this.match !== null;
    if (!this.link.send(msg)) return;
    if (inChat) {
      this.#endMatch();
      this.#setState(State.SEARCHING, msg.type === 'block' ? 'blocked' : 'reported');
    }
  }

  #onBanned(msg) {
    const secs = Number(msg.retryAfterSecs) || 0;
    this.bannedUntil = Date.now() + secs * 1000;
    this.wantSearch = false;
    this.#endMatch();
    this.#emit('banned', { retryAfterSecs: secs, until: this.bannedUntil });
    if (this.state !== State.IDLE) this.#setState(State.IDLE, 'banned');
  }

  // ---- state machine -----------------------------------------------------

  #setState(next, reason = null) {
    const prev = this.state;
    if (prev === next && this.reason === reason) return;
    if (prev !== next && !TRANSITIONS[prev].includes(next)) {
      // A bug, not a user-facing condition: report it but keep going.
      this.#emit('error', { code: 'client-state', message: `unexpected transition ${prev} -> ${next}` });
    }
    this.state = next;
    this.reason = reason;
    this.#emit('statechange', { state: next, previous: prev, reason, chatting: this.chatting });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** The state a live match stands for: connected once both heard each other. */
  #matchState() {
    return this.match && this.match.heardPeer ? State.CONNECTED : State.CONNECTING;
  }

  // ---- matchmaker link -----------------------------------------------------

  #onLinkDown({ code, attempt, delayMs, resuming }) {
    this.#emit('reconnect', { attempt, delayMs, code, resuming });
    if (this.state !== State.IDLE) this.#setState(State.RECONNECTING, 'connection-lost');
  }

  /** A fresh identity: first connect, or a resume that failed. */
  #onFresh({ clientId, resumeFailed }) {
    this.clientId = clientId;
    if (this.match) {
      // The server no longer holds our match: that stranger is lost.
      this.#endMatch();
    }
    if (!this.wantSearch) {
      if (this.state !== State.IDLE) this.#setState(State.IDLE, 'connection-lost');
      return;
    }
    this.#ask('available');
    if (resumeFailed || this.state === State.RECONNECTING) this.#setState(State.SEARCHING, 'reconnected');
  }

  #onResumed({ clientId, state }) {
    this.clientId = clientId;
    this.#emit('resumed', { clientId, state });
    if (!this.wantSearch) {
      // The user stopped while we were away: say so now.
      if (state !== 'idle') this.link.send({ type: 'leave' });
      if (this.state !== State.IDLE) this.#setState(State.IDLE, 'stop');
      return;
    }
    if (state === 'matched') {
      // A fresh `matched` for the same room follows at once.
      if (!this.match && this.state === State.RECONNECTING) this.#setState(State.SEARCHING, 'reconnected');
      return;
    }
    const hadMatch = this.#dropMatchAsLeft();
    if (state === 'idle') this.#ask('available');
    if (this.state !== State.SEARCHING || hadMatch) this.#setState(State.SEARCHING, hadMatch ? 'partner-left' : 'reconnected');
  }

  #onLinkReplaced() {
    this.wantSearch = false;
    this.#endMatch();
    this.#setState(State.IDLE, 'replaced');
  }

  #onMatchmaker(msg) {
    switch (msg.type) {
      case 'queued':
        if (!this.wantSearch) break; // answer to a request the user has since cancelled
        // `queued` means the server holds no match for us: drop any local one.
        if (this.match) this.#endMatch();
        if (this.state !== State.SEARCHING) {
          const why = this.state === State.ENDED ? this.reason : 'queued';
          this.#setState(State.SEARCHING, why);
        }
        break;
      case 'matched':
        this.#onMatched(msg);
        break;
      case 'partner-left':
        this.#onPartnerLeft(msg.roomId);
        break;
      case 'partner-away':
      case 'partner-back':
        if (this.match && (!msg.roomId || msg.roomId === this.match.roomId)) this.match.setPartnerAway(msg.type === 'partner-away');
        break;
      case 'left':
        // Out of the queue and any room (answer to our `leave`). A match that
        // crossed our leave is void; a later `available` brings `queued`.
        if (this.match) {
          this.#endMatch();
          if (this.wantSearch) this.#setState(State.SEARCHING, 'queued');
        }
        break;
      case 'authenticated':
        break;
      case 'blocked':
      case 'reported':
        this.#emit(msg.type, {});
        break;
      case 'error':
        if (msg.code === 'banned') {
          this.#onBanned(msg);
          break;
        }
        this.#emit('error', { code: String(msg.code || 'internal'), message: String(msg.message || ''), source: 'matchmaker' });
        break;
      default:
        break; // unknown server message types are ignored (forward compatibility)
    }
  }

  #onPartnerLeft(roomId) {
    const m = this.match;
    // No match, or a stale room: already torn down locally.
    if (!m || (roomId && roomId !== m.roomId)) return;
    this.#endMatch();
    this.#setState(State.ENDED, 'partner-left');
    this.#emit('partner-left', { roomId });
  }

  /** End the match because the server no longer has it; true if there was one. */
  #dropMatchAsLeft() {
    const m = this.match;
    if (!m) return false;
    this.#endMatch();
    this.#emit('partner-left', { roomId: m.roomId });
    return true;
  }

  // ---- one match ---------------------------------------------------------

  #onMatched(msg) {
    if (!this.wantSearch) return; // the user stopped while this was in flight
    if (typeof msg.roomId !== 'string' || typeof msg.signalingUrl !== 'string' || typeof msg.ticket !== 'string') {
      this.#emit('error', { code: 'bad-message', message: 'matched message is missing fields', source: 'client' });
      return;
    }
    const current = this.match;
    if (current && current.roomId === msg.roomId) {
      // The same stranger after a resume: a fresh ticket, same peer connection.
      current.updateTicket(msg.ticket, msg.signalingUrl);
      this.#setState(this.#matchState(), 'resumed');
      return;
    }
    this.#endMatch();
    const m = new Match(msg, this.matchOpts, this.media, {
      connected: () => this.#current(m) && this.state !== State.RECONNECTING && this.#setState(State.CONNECTED, 'handshake'),
      message: (text) => this.#current(m) && this.#emit('message', { text: capText(text) }),
      remotestream: (stream) => this.#current(m) && this.#emit('remotestream', { stream }),
      unstable: (unstable) => this.#current(m) && this.#emit('partner-unstable', { roomId: m.roomId, unstable }),
      gone: (reason) => this.#onPeerGone(m, reason),
      fail: (code, err) => this.#fail(m, code, err),
      error: (detail) => this.#current(m) && this.#emit('error', detail),
      // Also from a match just replaced: its report is still its own room's.
      report: (report) => this.link.send(report),
    });
    this.match = m;
    this.#setState(State.CONNECTING, 'matched');
    const common = Array.isArray(msg.commonInterests) ? msg.commonInterests.filter((i) => typeof i === 'string') : [];
    this.#emit('matched', {
      roomId: m.roomId,
      partnerId: m.partnerId,
      initiator: m.initiator,
      commonInterests: common,
      askedInterests: this.interests.length > 0,
    });
    m.start(msg.iceServers);
  }

  #current(m) {
    return this.match === m;
  }

  /** The stranger is gone according to the signaler or the peer connection. */
  #onPeerGone(m, reason) {
    if (this.match !== m) return;
    this.#endMatch();
    this.#setState(State.ENDED, reason);
    if (reason === 'partner-left') this.#emit('partner-left', { roomId: m.roomId });
  }

  #fail(m, code, err) {
    if (this.match !== m) return;
    this.#emit('error', { code, message: String((err && err.message) || err || code), source: 'client' });
    this.#endMatch();
    this.#setState(State.ENDED, 'error');
  }

  #endMatch() {
    const m = this.match;
    if (!m) return;
    this.match = null;
    m.dispose();
    if (m.unstableShown) this.#emit('partner-unstable', { roomId: m.roomId, unstable: false });
    if (m.remoteStream) this.#emit('remotestream', { stream: null });
  }
}
