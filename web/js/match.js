// Match: everything of one stranger — the RTCPeerConnection, its data channel,
// the signaler socket (rejoined by itself when it drops) and the timers — with
// one dispose() that tears it all down. It decides nothing about the client's
// state: it reports to its owner (StrangerClient) through `handlers`:
//
//   connected()             both sides heard each other's hello (once)
//   message(text)           a chat message from the stranger
//   remotestream(stream)    the stranger's media changed
//   unstable(flag)          the stranger's connection is away / back
//   gone(reason)            the stranger is gone: partner-left, connection-failed,
//                           timeout, replaced
//   fail(code, err)         a local failure that ends the match
//   error(detail)           a signaler error worth reporting (the match goes on)
//   report(msg)             a `connection-report` for the matchmaker (once per match:
//                           connected with the time and candidate type, or failed/timeout)
//
// Every callback of a disposed match is ignored, so a stale callback from a
// previous stranger can never touch the next one.

import { autoTransport, backoffDelay, parseJson } from './transport.js';

export class Match {
  /**
   * @param {object} info roomId, partnerId, initiator, signalingUrl, ticket, iceServers
   * @param {object} opts the client's options (timeouts, backoff)
   * @param {MediaStream|null} media
   * @param {object} handlers see above
   */
  constructor(info, opts, media, handlers) {
    this.roomId = info.roomId;
    this.partnerId = info.partnerId;
    this.initiator = info.initiator === true;
    this.polite = !this.initiator;
    this.signalingUrl = info.signalingUrl;
    this.ticket = info.ticket;
    this.opts = opts;
    this.media = media;
    this.h = handlers;
    this.disposed = false;
    this.pc = null;
    this.dc = null;
    this.sig = null; // signaler transport
    this.joined = false; // `joined` seen on the current signaler socket
    this.everJoined = false;
    this.sigAttempt = 0;
    this.sigTimer = null;
    this.sigLostAt = null;
    this.sigStale = false; // the ticket was refused on a rejoin: wait for a fresh one
    this.outbox = []; // signaling messages waiting for `joined`
    this.chain = Promise.resolve(); // incoming signaling, processed one at a time
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.tracksAttached = false;
    this.senders = new Map(); // kind -> RTCRtpSender
    this.remoteStream = null;
    this.heardPeer = false;
    this.helloTimer = null;
    this.connectTimer = null;
    this.peerAway = false; // signaler: peer-away
    this.partnerAway = false; // matchmaker: partner-away
    this.unstableShown = false;
    this.suspectTimer = null; // waiting for a verdict after the channel closed or ICE failed
    this.suspectSince = null;
    this.disconnectTimer = null;
    this.iceRestartPending = false;
    this.matchedAt = performance.now(); // for connectMs
    this.reported = false;
  }

  /** The data channel is open and the stranger heard us. */
  get chatting() {
    return !this.disposed && this.heardPeer && this.dc !== null && this.dc.readyState === 'open';
  }

  start(iceServers) {
    this.connectTimer = setTimeout(() => {
      if (this.disposed || this.heardPeer) return;
      this.#report('timeout');
      this.h.gone('timeout');
    }, this.opts.connectTimeoutMs);

    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [] });
    } catch (err) {
      this.h.fail('webrtc-unavailable', err);
      return;
    }
    this.pc = pc;
    pc.onicecandidate = (ev) => {
      if (this.disposed) return;
      this.#signal({ type: 'ice', candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = () => this.#negotiate();
    pc.ontrack = (ev) => this.#onTrack(ev);
    pc.onconnectionstatechange = () => this.#onConnectionState();
    pc.ondatachannel = (ev) => {
      if (this.disposed) return;
      if (this.dc && this.dc.readyState !== 'closed') return;
      this.#wireChannel(ev.channel);
    };

    if (this.initiator) {
      // Tracks first, then the channel: one negotiationneeded -> one offer with everything.
      this.applyMedia(this.media);
      this.#wireChannel(pc.createDataChannel('chat', { ordered: true }));
    }
    this.#openSignaler();
  }

  /** Tear everything down; nothing of this match acts afterwards. */
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.connectTimer);
    clearInterval(this.helloTimer);
    clearTimeout(this.sigTimer);
    clearTimeout(this.suspectTimer);
    clearTimeout(this.disconnectTimer);
    if (this.dc) {
      const dc = this.dc;
      dc.onopen = dc.onmessage = dc.onclose = null;
      try {
        dc.close();
      } catch {
        /* closing */
      }
    }
    if (this.pc) {
      const pc = this.pc;
      pc.onicecandidate = pc.onnegotiationneeded = pc.ontrack = null;
      pc.onconnectionstatechange = pc.ondatachannel = null;
      pc.close();
    }
    if (this.sig) {
      const sig = this.sig;
      this.sig = null;
      if (this.joined) sig.send({ type: 'leave' });
      sig.close(1000, 'bye');
    }
  }

  /** Send one chat message; true if it went out. */
  send(text) {
    return this.chatting && safeSend(this.dc, JSON.stringify({ kind: 'chat', text }));
  }

  /** A fresh ticket (and maybe signaler) for this room, from a matchmaker resume. */
  updateTicket(ticket, signalingUrl) {
    if (this.disposed || typeof ticket !== 'string') return;
    this.ticket = ticket;
    const stale = this.sigStale;
    this.sigStale = false;
    if (this.sig && this.joined && !stale) return; // the signaler seat is fine; keep it
    if (typeof signalingUrl === 'string') this.signalingUrl = signalingUrl;
    if (this.sig) {
      this.sig.close(4001, 'rejoin');
      this.sig = null;
    }
    clearTimeout(this.sigTimer);
    this.sigTimer = null;
    this.#openSignaler();
  }

  /** The matchmaker said partner-away (true) or partner-back (false). */
  setPartnerAway(away) {
    this.partnerAway = away;
    this.#updateUnstable();
    if (!away) this.#maybeRecover();
  }

  // ---- signaler ------------------------------------------------------------

  #openSignaler() {
    if (this.disposed) return;
    let sig;
    try {
      sig = autoTransport(this.signalingUrl, {
        open: () => {
          if (this.sig === sig) sig.send({ type: 'join', roomId: this.roomId, ticket: this.ticket });
        },
        message: (msg) => {
          if (this.sig === sig && !this.disposed) this.#onSignal(msg);
        },
        close: (ev) => {
          if (this.sig === sig && !this.disposed) this.#onSignalerLost(ev.code);
        },
      });
    } catch (err) {
      this.h.fail('bad-url', err);
      return;
    }
    this.sig = sig;
    this.joined = false;
  }

  #onSignalerLost(code) {
    this.sig = null;
    this.joined = false;
    if (code === 4000) {
      // Another tab joined with our ticket; it owns this stranger now.
      this.h.gone('replaced');
      return;
    }
    if (this.sigStale) return; // waiting for a fresh ticket from the matchmaker
    if (this.sigLostAt === null) this.sigLostAt = Date.now();
    const graceMs = this.opts.resumeGraceMs();
    if (Date.now() - this.sigLostAt > graceMs) {
      // Our seat is gone by now. Once chatting the signaler is only needed to
      // renegotiate, so carry on; before that the match cannot open.
      if (!this.heardPeer) this.h.fail('signaling-lost', 'the signaling connection closed before the chat opened');
      return;
    }
    const delay = code === 1012 ? 0 : backoffDelay(this.sigAttempt, this.opts.reconnectBaseMs, this.opts.reconnectCapMs);
    this.sigAttempt += 1;
    this.sigTimer = setTimeout(() => {
      this.sigTimer = null;
      if (!this.disposed && !this.sig) this.#openSignaler();
    }, delay);
  }

  /** Queue or send a signaling message; nothing goes out before `joined`. */
  #signal(msg) {
    if (!(this.joined && this.sig && this.sig.send(msg))) this.outbox.push(msg);
  }

  #onSignal(msg) {
    switch (msg.type) {
      case 'joined': {
        this.joined = true;
        this.everJoined = true;
        this.sigAttempt = 0;
        this.sigLostAt = null;
        const queued = this.outbox;
        this.outbox = [];
        for (const out of queued) this.#signal(out);
        if (this.iceRestartPending) this.#restartIce();
        break;
      }
      case 'offer':
      case 'answer':
        if (typeof msg.sdp !== 'string') return;
        this.#serial(() => this.#onDescription({ type: msg.type, sdp: msg.sdp }));
        break;
      case 'ice':
        this.#serial(() => this.#onRemoteCandidate(msg.candidate));
        break;
      case 'peer-left':
        this.h.gone('partner-left');
        break;
      case 'peer-away':
        this.peerAway = true;
        this.#updateUnstable();
        break;
      case 'peer-back':
        this.peerAway = false;
        this.#updateUnstable();
        this.#maybeRecover();
        break;
      case 'peer-joined':
        // The stranger reloaded or lost its seat and joined anew: a fresh
        // negotiation brings the connection back if it broke.
        this.peerAway = false;
        this.#updateUnstable();
        this.#maybeRecover();
        break;
      case 'error': {
        const refused = msg.code === 'bad-ticket' || msg.code === 'room-full';
        if (refused && this.everJoined && !this.joined && this.heardPeer) {
          // A rejoin refused (seat gone, or the ticket is spent): wait for the
          // matchmaker's fresh ticket; the chat goes on meanwhile.
          this.sigStale = true;
          const sig = this.sig;
          this.sig = null;
          sig?.close(1000, 'refused');
          break;
        }
        this.h.error({ code: String(msg.code || 'internal'), message: String(msg.message || ''), source: 'signaler' });
        if (refused) this.h.fail(msg.code, msg.message);
        break;
      }
      default:
        break; // left, pong, and anything new
    }
  }

  // ---- recovery ------------------------------------------------------------

  #updateUnstable() {
    const unstable = this.peerAway || this.partnerAway;
    if (unstable === this.unstableShown) return;
    this.unstableShown = unstable;
    this.h.unstable(unstable);
  }

  #onConnectionState() {
    if (this.disposed) return;
    const state = this.pc.connectionState;
    if (state === 'connected') {
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = null;
      this.#maybeRecover();
    } else if (state === 'failed') {
      this.#restartIce();
      this.#suspect();
    } else if (state === 'disconnected') {
      // Often back by itself within a few seconds; if not, restart ICE.
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = setTimeout(() => {
        this.disconnectTimer = null;
        if (!this.disposed && this.pc.connectionState === 'disconnected') this.#restartIce();
      }, this.opts.disconnectedMs);
      this.#suspect();
    }
  }

  #restartIce() {
    if (this.disposed || !this.pc) return;
    if (!this.joined) {
      this.iceRestartPending = true; // once the signaler is back
      return;
    }
    this.iceRestartPending = false;
    try {
      this.pc.restartIce();
    } catch {
      /* closed */
    }
  }

  /**
   * The channel closed or the peer connection broke. That ends the match only
   * when no resume is possible: wait a little for the servers' verdict
   * (peer-left/partner-left end it; peer-away/partner-away keep waiting).
   */
  #suspect() {
    if (this.suspectTimer) return;
    if (this.suspectSince === null) this.suspectSince = Date.now();
    this.suspectTimer = setTimeout(() => {
      this.suspectTimer = null;
      if (this.disposed) return;
      if (this.#healthy()) {
        this.suspectSince = null;
        return;
      }
      const waited = Date.now() - this.suspectSince;
      const away = this.peerAway || this.partnerAway || this.opts.linkRecovering();
      if (away && waited < this.opts.resumeGraceMs() + this.opts.connectTimeoutMs) {
        this.#suspect(); // the stranger (or we) may still come back
        return;
      }
      const channelGone = !this.dc || this.dc.readyState === 'closed';
      const reason = channelGone && !away ? 'partner-left' : 'connection-failed';
      if (reason === 'connection-failed') this.#report('failed');
      this.h.gone(reason);
    }, this.opts.verdictMs);
  }

  #healthy() {
    const pcOk = this.pc && ['connected', 'connecting', 'new'].includes(this.pc.connectionState);
    return pcOk && this.dc && this.dc.readyState === 'open';
  }

  /** After the stranger came back: mend what broke meanwhile. */
  #maybeRecover() {
    if (this.disposed || !this.pc) return;
    const state = this.pc.connectionState;
    if (state === 'failed' || state === 'disconnected') this.#restartIce();
    if (this.initiator && this.heardPeer && this.dc && this.dc.readyState === 'closed' && state !== 'closed') {
      // The channel died with the transport: open a new one (renegotiated).
      this.#wireChannel(this.pc.createDataChannel('chat', { ordered: true }));
    }
    if (this.#healthy()) {
      clearTimeout(this.suspectTimer);
      this.suspectTimer = null;
      this.suspectSince = null;
    }
  }

  // ---- negotiation ---------------------------------------------------------

  /** Run signaling steps one after another so a candidate never overtakes its description. */
  #serial(step) {
    this.chain = this.chain
      .then(() => (this.disposed ? undefined : step()))
      .catch((err) => {
        if (!this.disposed) this.h.fail('webrtc', err);
      });
  }

  // "Perfect negotiation": the initiator is impolite, the other side polite.
  async #negotiate() {
    if (this.disposed) return;
    // The answerer waits for the first offer instead of racing with its own.
    if (!this.initiator && !this.tracksAttached) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      if (this.disposed) return;
      this.#signal({ type: 'offer', sdp: this.pc.localDescription.sdp });
    } catch (err) {
      if (!this.disposed) this.h.fail('webrtc', err);
    } finally {
      this.makingOffer = false;
    }
  }

  async #onDescription(desc) {
    const pc = this.pc;
    const collision = desc.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    if (desc.type === 'answer' && pc.signalingState !== 'have-local-offer') return; // a stale answer
    await pc.setRemoteDescription(desc);
    if (this.disposed || desc.type !== 'offer') return;
    // The answerer adds its tracks now so they ride on the offer's transceivers.
    if (!this.tracksAttached) this.applyMedia(this.media);
    await pc.setLocalDescription();
    if (this.disposed) return;
    this.#signal({ type: 'answer', sdp: pc.localDescription.sdp });
  }

  async #onRemoteCandidate(candidate) {
    if (candidate !== null && (typeof candidate !== 'object' || Array.isArray(candidate))) return;
    try {
      // null marks the end of the stranger's candidates.
      await this.pc.addIceCandidate(candidate === null ? undefined : candidate);
    } catch (err) {
      // Once the chat was open a refused candidate is never fatal: after an ICE
      // restart the old generation's late candidates are refused, harmlessly.
      if (!this.ignoreOffer && this.pc.remoteDescription && !this.heardPeer) throw err;
    }
  }

  // ---- media ---------------------------------------------------------------

  /** Make the senders match `stream` (add, replace or remove a track per kind). */
  applyMedia(stream) {
    this.media = stream;
    if (this.disposed || !this.pc) return;
    this.tracksAttached = true;
    for (const kind of ['audio', 'video']) {
      const track = stream ? stream.getTracks().find((t) => t.kind === kind && t.readyState === 'live') : null;
      const sender = this.senders.get(kind);
      if (track && sender) {
        if (sender.track !== track) sender.replaceTrack(track).catch((err) => !this.disposed && this.h.fail('webrtc', err));
      } else if (track) {
        this.senders.set(kind, this.pc.addTrack(track, stream));
      } else if (sender) {
        this.pc.removeTrack(sender);
        this.senders.delete(kind);
      }
    }
  }

  #onTrack(ev) {
    if (this.disposed) return;
    if (!this.remoteStream) this.remoteStream = new MediaStream();
    const stream = this.remoteStream;
    const track = ev.track;
    if (!stream.getTracks().includes(track)) stream.addTrack(track);
    const changed = () => {
      if (!this.disposed) this.h.remotestream(stream);
    };
    track.onmute = changed;
    track.onunmute = changed;
    track.onended = changed;
    changed();
  }

  // ---- data channel --------------------------------------------------------

  #wireChannel(dc) {
    this.dc = dc;
    dc.onopen = () => {
      if (this.disposed || this.dc !== dc) return;
      if (!this.reported) this.#reportConnected();
      // A frame sent the instant the channel opens is occasionally lost, so
      // keep saying hello until the stranger answers; only then are we connected.
      const hello = () => {
        if (!this.disposed && this.dc === dc && !this.heardPeer) safeSend(dc, '{"kind":"hello"}');
      };
      hello();
      clearInterval(this.helloTimer);
      if (!this.heardPeer) this.helloTimer = setInterval(hello, this.opts.helloIntervalMs);
      this.#maybeRecover();
    };
    dc.onmessage = (ev) => {
      if (this.disposed || this.dc !== dc) return;
      if (typeof ev.data !== 'string' || ev.data.length > this.opts.maxFrameBytes) return;
      const frame = parseJson(ev.data);
      if (!frame || typeof frame.kind !== 'string') return;
      this.#onFrame(dc, frame);
    };
    dc.onclose = () => {
      if (this.disposed || this.dc !== dc) return;
      this.#suspect();
    };
    if (dc.readyState === 'open') dc.onopen();
  }

  // ---- connection report ---------------------------------------------------

  /** Tell the matchmaker, once, how this match's connection went. */
  #report(outcome, fields = {}) {
    if (this.reported) return;
    this.reported = true;
    const connectMs = Math.max(0, Math.round(performance.now() - this.matchedAt));
    this.h.report({ type: 'connection-report', roomId: this.roomId, outcome, connectMs, ...fields });
  }

  /** The data channel opened: report the time and the local candidate type of the selected pair. */
  async #reportConnected() {
    const connectMs = Math.max(0, Math.round(performance.now() - this.matchedAt));
    this.reported = true; // nothing else reports while the statistics are read
    let candidateType = null;
    try {
      candidateType = selectedCandidateType(await this.pc.getStats());
    } catch {
      /* closed meanwhile */
    }
    // A type the contract does not name (or none) cannot be reported as connected.
    if (['host', 'srflx', 'prflx', 'relay'].includes(candidateType)) {
      this.h.report({ type: 'connection-report', roomId: this.roomId, outcome: 'connected', connectMs, candidateType });
    }
  }

  #onFrame(dc, frame) {
    switch (frame.kind) {
      case 'hello':
        // Always answer: our earlier ack may be the frame that got lost.
        safeSend(dc, '{"kind":"ack"}');
        this.#heard();
        break;
      case 'ack':
        this.#heard();
        break;
      case 'chat':
        if (typeof frame.text !== 'string') return;
        this.#heard(); // the stranger only chats once it heard us
        this.h.message(frame.text);
        break;
      default:
        break; // unknown kinds are ignored
    }
  }

  #heard() {
    if (this.heardPeer) return;
    this.heardPeer = true;
    clearInterval(this.helloTimer);
    this.helloTimer = null;
    clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.h.connected();
  }
}

/** The local candidate type of the selected candidate pair in an RTCStatsReport, or null. */
export function selectedCandidateType(stats) {
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (pairId === null) {
    // Browsers without transport stats: the nominated, succeeded pair.
    stats.forEach((s) => {
      if (pairId === null && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pairId = s.id;
    });
  }
  const pair = pairId && stats.get(pairId);
  const local = pair && stats.get(pair.localCandidateId);
  return local ? local.candidateType || null : null;
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
