// StrangerClient: the reusable browser client for the Strangers service.
//
// It hides the two-socket dance of wire contract v1: the matchmaker socket
// (ready -> available -> queued -> matched), the signaler socket (join, then
// offer/answer/ice relayed between the two peers), the RTCPeerConnection and
// its data channel. Callers see a small state machine and a few events; see
// docs/client.md for the API.
//
// Every piece of a match (peer connection, signaler socket, timers) lives in
// one Match object. Each async callback checks that its match (or its
// matchmaker socket) is still the current one before acting, so a stale
// callback from a previous stranger can never touch the next one.

/** Client states. `reconnecting` means the matchmaker socket dropped while searching or chatting. */
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

const TRANSITIONS = {
  idle: ['searching'],
  searching: ['connecting', 'idle', 'reconnecting', 'searching'],
  connecting: ['connected', 'ended', 'searching', 'idle', 'reconnecting'],
  connected: ['ended', 'searching', 'idle', 'reconnecting'],
  ended: ['searching', 'connecting', 'idle', 'reconnecting', 'ended'],
  reconnecting: ['searching', 'idle'],
};

const DEFAULTS = {
  connectTimeoutMs: 15000, // matched -> data channel handshake done
  helloIntervalMs: 250, // hello re-send period until the peer answers
  reconnectBaseMs: 500,
  reconnectCapMs: 10000,
  keepaliveMs: 20000, // app-level ping period on the matchmaker socket
  maxFrameBytes: 16384, // data channel frames larger than this are dropped
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
    this.mm = null; // current matchmaker WebSocket
    this.mmReady = false;
    this.attempt = 0; // reconnect attempts since the last `ready`
    this.reconnectTimer = null;
    this.keepaliveTimer = null;
    this.awaitingPong = false;
    this.match = null; // current Match, see #newMatch
    this.gen = 0; // match generation counter
  }

  // ---- public API --------------------------------------------------------

  /**
   * Open the matchmaker socket without searching, so that this visitor counts as
   * online and a later start() skips the handshake. start() does it when needed.
   */
  connect() {
    this.#ensureMatchmaker();
  }

  /** Start looking for a stranger (no-op unless idle). */
  start() {
    if (this.state !== State.IDLE) return;
    this.wantSearch = true;
    this.#setState(State.SEARCHING, 'start');
    this.#ensureMatchmaker();
    if (this.mmReady) this.#mmSend({ type: 'available' });
  }

  /** Leave the current stranger (if any) and look for the next one. */
  next() {
    if (this.state === State.IDLE) return this.start();
    if (this.state === State.RECONNECTING) return;
    this.wantSearch = true;
    const hadMatch = this.match !== null || this.state === State.ENDED;
    this.#endMatch();
    this.#setState(State.SEARCHING, 'next');
    if (!this.mmReady) return this.#ensureMatchmaker();
    // While merely searching there is nobody to skip: stay in the queue.
    if (hadMatch) this.#mmSend({ type: 'next' });
  }

  /** Leave the queue and any stranger; back to idle. The matchmaker socket stays open. */
  stop() {
    if (this.state === State.IDLE) return;
    this.wantSearch = false;
    this.#endMatch();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.mmReady) this.#mmSend({ type: 'leave' });
    this.#setState(State.IDLE, 'stop');
  }

  /** Stop and close every socket; the client can still be started again. */
  close() {
    this.stop();
    this.#closeMatchmaker();
  }

  /**
   * Send a chat message to the stranger. Returns the text actually sent (capped at
   * MAX_TEXT_LENGTH) or null when not connected or the text is blank.
   */
  send(text) {
    const m = this.match;
    if (this.state !== State.CONNECTED || !m || !m.dc || m.dc.readyState !== 'open') return null;
    if (typeof text !== 'string' || text.trim() === '') return null;
    const capped = capText(text);
    return safeSend(m.dc, JSON.stringify({ kind: 'chat', text: capped })) ? capped : null;
  }

  /**
   * Use `stream` (camera/microphone) for this and later strangers, or null for text only.
   * During a chat the change is renegotiated with the stranger.
   */
  setMedia(stream) {
    this.media = stream || null;
    const m = this.match;
    if (m && m.pc && m.tracksAttached) this.#applyMedia(m);
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
    this.#emit('statechange', { state: next, previous: prev, reason });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- matchmaker socket -------------------------------------------------

  #ensureMatchmaker() {
    if (this.mm || this.reconnectTimer) return;
    let ws;
    try {
      ws = new WebSocket(this.matchmakerUrl);
    } catch (err) {
      this.#emit('error', { code: 'bad-url', message: String(err && err.message) });
      return;
    }
    this.mm = ws;
    this.mmReady = false;
    ws.onmessage = (ev) => {
      if (this.mm !== ws) return;
      this.awaitingPong = false; // any message shows the socket is alive
      const msg = parseJson(ev.data);
      if (msg && typeof msg.type === 'string') this.#onMatchmaker(msg);
    };
    ws.onclose = () => {
      if (this.mm !== ws) return;
      this.#onMatchmakerLost();
    };
    // onerror is always followed by onclose, which does the work.
    ws.onerror = () => {};
  }

  #mmSend(msg) {
    if (this.mm && this.mm.readyState === WebSocket.OPEN) this.mm.send(JSON.stringify(msg));
  }

  #closeMatchmaker() {
    const ws = this.mm;
    this.mm = null;
    this.mmReady = false;
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
  }

  #onMatchmakerLost() {
    this.#closeMatchmaker();
    // The server treats a lost socket as `leave`: any stranger is gone for good.
    this.#endMatch();
    if (!this.wantSearch) {
      if (this.state !== State.IDLE) this.#setState(State.IDLE, 'connection-lost');
      return;
    }
    this.#setState(State.RECONNECTING, 'connection-lost');
    const base = Math.min(this.opts.reconnectCapMs, this.opts.reconnectBaseMs * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
    this.attempt += 1;
    this.#emit('reconnect', { attempt: this.attempt, delayMs: Math.round(delay) });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.wantSearch) this.#ensureMatchmaker();
    }, delay);
  }

  // An app-level ping each period; a ping still unanswered a period later means
  // the socket is dead without knowing it. (Counting ticks rather than elapsed
  // time keeps this right when a background tab's timers are throttled.)
  #startKeepalive(ws) {
    clearInterval(this.keepaliveTimer);
    this.awaitingPong = false;
    this.keepaliveTimer = setInterval(() => {
      if (this.mm !== ws) return;
      if (this.awaitingPong) {
        this.#onMatchmakerLost();
        return;
      }
      this.awaitingPong = true;
      this.#mmSend({ type: 'ping' });
    }, this.opts.keepaliveMs);
  }

  #onMatchmaker(msg) {
    switch (msg.type) {
      case 'ready':
        this.mmReady = true;
        this.attempt = 0;
        this.clientId = typeof msg.clientId === 'string' ? msg.clientId : null;
        this.#startKeepalive(this.mm);
        if (this.wantSearch) {
          this.#mmSend({ type: 'available' });
          if (this.state === State.RECONNECTING) this.#setState(State.SEARCHING, 'reconnected');
        }
        break;
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
      case 'left':
        // Out of the queue and any room (answer to our `leave`). A match that
        // crossed our leave is void; a later `available` brings `queued`.
        if (this.match) {
          this.#endMatch();
          if (this.wantSearch) this.#setState(State.SEARCHING, 'queued');
        }
        break;
      case 'pong':
      case 'authenticated':
        break;
      case 'error':
        this.#emit('error', { code: String(msg.code || 'internal'), message: String(msg.message || ''), source: 'matchmaker' });
        break;
      default:
        break; // unknown server message types are ignored (forward compatibility)
    }
  }

  #onPartnerLeft(roomId) {
    const m = this.match;
    // No match, or a stale room: already torn down locally (e.g. the data channel closed first).
    if (!m || (roomId && roomId !== m.roomId)) return;
    this.#endMatch();
    this.#setState(State.ENDED, 'partner-left');
    this.#emit('partner-left', { roomId });
  }

  /** The stranger is gone according to the signaler or the peer connection. */
  #onPeerGone(m, reason) {
    if (this.match !== m) return;
    this.#endMatch();
    this.#setState(State.ENDED, reason);
    if (reason === 'partner-left') this.#emit('partner-left', { roomId: m.roomId });
  }

  // ---- one match ---------------------------------------------------------

  #onMatched(msg) {
    if (!this.wantSearch) return; // the user stopped while this was in flight
    if (typeof msg.roomId !== 'string' || typeof msg.signalingUrl !== 'string' || typeof msg.ticket !== 'string') {
      this.#emit('error', { code: 'bad-message', message: 'matched message is missing fields', source: 'client' });
      return;
    }
    this.#endMatch();
    const m = {
      gen: ++this.gen,
      roomId: msg.roomId,
      partnerId: msg.partnerId,
      initiator: msg.initiator === true,
      polite: msg.initiator !== true,
      pc: null,
      dc: null,
      sig: null,
      joined: false,
      outbox: [], // signaling messages waiting for `joined`
      chain: Promise.resolve(), // incoming signaling, processed one at a time
      makingOffer: false,
      ignoreOffer: false,
      tracksAttached: false,
      senders: new Map(), // kind -> RTCRtpSender
      remoteStream: null,
      heardPeer: false,
      helloTimer: null,
      connectTimer: null,
    };
    this.match = m;
    this.#setState(State.CONNECTING, 'matched');
    this.#emit('matched', { roomId: m.roomId, partnerId: m.partnerId, initiator: m.initiator });

    m.connectTimer = setTimeout(() => {
      if (this.match !== m || this.state === State.CONNECTED) return;
      this.#endMatch();
      this.#setState(State.ENDED, 'timeout');
    }, this.opts.connectTimeoutMs);

    const iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers });
    } catch (err) {
      this.#fail(m, 'webrtc-unavailable', err);
      return;
    }
    m.pc = pc;
    pc.onicecandidate = (ev) => {
      if (this.match !== m) return;
      this.#signal(m, { type: 'ice', candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = () => this.#negotiate(m);
    pc.ontrack = (ev) => this.#onTrack(m, ev);
    pc.onconnectionstatechange = () => {
      if (this.match !== m) return;
      if (pc.connectionState === 'failed') this.#onPeerGone(m, 'connection-failed');
    };
    pc.ondatachannel = (ev) => {
      if (this.match !== m || m.dc) return;
      this.#wireChannel(m, ev.channel);
    };

    if (m.initiator) {
      // Tracks first, then the channel: one negotiationneeded -> one offer with everything.
      this.#applyMedia(m);
      this.#wireChannel(m, pc.createDataChannel('chat', { ordered: true }));
    }
    this.#openSignaler(m, msg.signalingUrl, msg.ticket);
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
    clearTimeout(m.connectTimer);
    clearInterval(m.helloTimer);
    if (m.dc) {
      m.dc.onopen = m.dc.onmessage = m.dc.onclose = null;
      try {
        m.dc.close();
      } catch {
        /* closing */
      }
    }
    if (m.pc) {
      const pc = m.pc;
      pc.onicecandidate = pc.onnegotiationneeded = pc.ontrack = null;
      pc.onconnectionstatechange = pc.ondatachannel = null;
      pc.close();
    }
    if (m.sig) {
      const ws = m.sig;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WebSocket.OPEN) {
        try {
          ws.send(JSON.stringify({ type: 'leave' }));
        } catch {
          /* closing */
        }
      }
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000);
    }
    if (m.remoteStream) this.#emit('remotestream', { stream: null });
  }

  // ---- signaler socket ---------------------------------------------------

  #openSignaler(m, url, ticket) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.#fail(m, 'bad-url', err);
      return;
    }
    m.sig = ws;
    ws.onopen = () => {
      if (this.match !== m) return;
      ws.send(JSON.stringify({ type: 'join', roomId: m.roomId, ticket }));
    };
    ws.onmessage = (ev) => {
      if (this.match !== m) return;
      const msg = parseJson(ev.data);
      if (msg && typeof msg.type === 'string') this.#onSignal(m, msg);
    };
    ws.onclose = (ev) => {
      if (this.match !== m) return;
      m.sig = null;
      if (ev.code === 4000) {
        // Another tab joined with our ticket; it owns this stranger now.
        this.#endMatch();
        this.#setState(State.ENDED, 'replaced');
      } else if (this.state === State.CONNECTING) {
        this.#fail(m, 'signaling-lost', 'the signaling connection closed before the chat opened');
      }
      // Once connected the signaler is only needed to renegotiate media: carry on.
    };
    ws.onerror = () => {};
  }

  /** Queue or send a signaling message; nothing goes out before `joined`. */
  #signal(m, msg) {
    if (m.joined && m.sig && m.sig.readyState === WebSocket.OPEN) m.sig.send(JSON.stringify(msg));
    else m.outbox.push(msg);
  }

  #onSignal(m, msg) {
    switch (msg.type) {
      case 'joined': {
        m.joined = true;
        const queued = m.outbox;
        m.outbox = [];
        for (const out of queued) this.#signal(m, out);
        break;
      }
      case 'offer':
      case 'answer':
        if (typeof msg.sdp !== 'string') return;
        this.#serial(m, () => this.#onDescription(m, { type: msg.type, sdp: msg.sdp }));
        break;
      case 'ice':
        this.#serial(m, () => this.#onRemoteCandidate(m, msg.candidate));
        break;
      case 'peer-left':
        this.#onPeerGone(m, 'partner-left');
        break;
      case 'error':
        this.#emit('error', { code: String(msg.code || 'internal'), message: String(msg.message || ''), source: 'signaler' });
        if (msg.code === 'bad-ticket' || msg.code === 'room-full') this.#fail(m, msg.code, msg.message);
        break;
      default:
        break; // peer-joined, left, pong, and anything new
    }
  }

  /** Run signaling steps one after another so a candidate never overtakes its description. */
  #serial(m, step) {
    m.chain = m.chain
      .then(() => (this.match === m ? step() : undefined))
      .catch((err) => this.#fail(m, 'webrtc', err));
  }

  // "Perfect negotiation": the initiator is impolite, the other side polite.
  async #negotiate(m) {
    if (this.match !== m) return;
    // The answerer waits for the first offer instead of racing with its own.
    if (!m.initiator && !m.tracksAttached) return;
    try {
      m.makingOffer = true;
      await m.pc.setLocalDescription();
      if (this.match !== m) return;
      this.#signal(m, { type: 'offer', sdp: m.pc.localDescription.sdp });
    } catch (err) {
      this.#fail(m, 'webrtc', err);
    } finally {
      m.makingOffer = false;
    }
  }

  async #onDescription(m, desc) {
    const pc = m.pc;
    const collision = desc.type === 'offer' && (m.makingOffer || pc.signalingState !== 'stable');
    m.ignoreOffer = !m.polite && collision;
    if (m.ignoreOffer) return;
    await pc.setRemoteDescription(desc);
    if (this.match !== m || desc.type !== 'offer') return;
    // The answerer adds its tracks now so they ride on the offer's transceivers.
    if (!m.tracksAttached) this.#applyMedia(m);
    await pc.setLocalDescription();
    if (this.match !== m) return;
    this.#signal(m, { type: 'answer', sdp: pc.localDescription.sdp });
  }

  async #onRemoteCandidate(m, candidate) {
    if (candidate !== null && (typeof candidate !== 'object' || Array.isArray(candidate))) return;
    try {
      // null marks the end of the stranger's candidates.
      await m.pc.addIceCandidate(candidate === null ? undefined : candidate);
    } catch (err) {
      if (!m.ignoreOffer && m.pc.remoteDescription) throw err;
    }
  }

  // ---- media -------------------------------------------------------------

  /** Make the senders match this.media (add, replace or remove a track per kind). */
  #applyMedia(m) {
    m.tracksAttached = true;
    const stream = this.media;
    for (const kind of ['audio', 'video']) {
      const track = stream ? stream.getTracks().find((t) => t.kind === kind && t.readyState === 'live') : null;
      const sender = m.senders.get(kind);
      if (track && sender) {
        if (sender.track !== track) sender.replaceTrack(track).catch((err) => this.#fail(m, 'webrtc', err));
      } else if (track) {
        m.senders.set(kind, m.pc.addTrack(track, stream));
      } else if (sender) {
        m.pc.removeTrack(sender);
        m.senders.delete(kind);
      }
    }
  }

  #onTrack(m, ev) {
    if (this.match !== m) return;
    if (!m.remoteStream) m.remoteStream = new MediaStream();
    const stream = m.remoteStream;
    const track = ev.track;
    if (!stream.getTracks().includes(track)) stream.addTrack(track);
    const changed = () => {
      if (this.match === m) this.#emit('remotestream', { stream });
    };
    track.onmute = changed;
    track.onunmute = changed;
    track.onended = changed;
    changed();
  }

  // ---- data channel ------------------------------------------------------

  #wireChannel(m, dc) {
    m.dc = dc;
    dc.onopen = () => {
      if (this.match !== m) return;
      // A frame sent the instant the channel opens is occasionally lost, so
      // keep saying hello until the stranger answers; only then are we connected.
      const hello = () => {
        if (this.match === m && !m.heardPeer) safeSend(dc, '{"kind":"hello"}');
      };
      hello();
      m.helloTimer = setInterval(hello, this.opts.helloIntervalMs);
    };
    dc.onmessage = (ev) => {
      if (this.match !== m) return;
      if (typeof ev.data !== 'string' || ev.data.length > this.opts.maxFrameBytes) return;
      const frame = parseJson(ev.data);
      if (!frame || typeof frame.kind !== 'string') return;
      this.#onFrame(m, dc, frame);
    };
    dc.onclose = () => this.#onPeerGone(m, 'partner-left');
    if (dc.readyState === 'open') dc.onopen();
  }

  #onFrame(m, dc, frame) {
    switch (frame.kind) {
      case 'hello':
        // Always answer: our earlier ack may be the frame that got lost.
        safeSend(dc, '{"kind":"ack"}');
        this.#heard(m);
        break;
      case 'ack':
        this.#heard(m);
        break;
      case 'chat':
        if (typeof frame.text !== 'string') return;
        this.#heard(m); // the stranger only chats once it heard us
        this.#emit('message', { text: capText(frame.text) });
        break;
      default:
        break; // unknown kinds are ignored
    }
  }

  #heard(m) {
    if (m.heardPeer) return;
    m.heardPeer = true;
    clearInterval(m.helloTimer);
    m.helloTimer = null;
    clearTimeout(m.connectTimer);
    m.connectTimer = null;
    this.#setState(State.CONNECTED, 'handshake');
  }
}

function safeSend(dc, data) {
  if (dc.readyState !== 'open') return false;
  try {
    dc.send(data);
    return true;
  } catch {
    return false; // closed in between; onclose handles the rest
  }
}

function parseJson(data) {
  if (typeof data !== 'string') return null;
  try {
    const value = JSON.parse(data);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}
