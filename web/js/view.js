// The page's view: every DOM update lives here, and text from a stranger only
// ever reaches the page through textContent.

const STATUS = {
  idle: {
    stop: 'Stopped. Press Start to meet a stranger.',
    replaced: 'This chat continued in another tab.',
    'connection-lost': 'Disconnected. Press Start to meet a stranger.',
    banned: 'You can’t meet strangers right now.',
    default: 'Press Start to meet a stranger.',
  },
  searching: {
    'partner-left': 'Stranger left. Looking for someone new…',
    timeout: 'Couldn’t reach that stranger. Looking for someone new…',
    'connection-failed': 'Lost that stranger. Looking for someone new…',
    reconnected: 'Back online. Looking for a stranger…',
    blocked: 'Blocked. You won’t meet them again. Looking for someone new…',
    reported: 'Reported, thank you. You won’t meet them again. Looking for someone new…',
    default: 'Looking for a stranger…',
  },
  connecting: { default: 'Stranger found. Connecting…' },
  connected: { default: 'Connected. You’re chatting with a stranger.' },
  ended: {
    'partner-left': 'Stranger left. Press Next to meet someone new.',
    timeout: 'Couldn’t connect to this stranger. Press Next to try someone else.',
    'connection-failed': 'The connection to the stranger failed. Press Next to try someone else.',
    replaced: 'This chat continued in another tab.',
    default: 'This chat has ended. Press Next to meet someone new.',
  },
  reconnecting: { default: 'Connection lost. Reconnecting…' },
};

const HINTS = {
  idle: ['Say hi to someone new.', 'Press Start to be paired with a random stranger, and Next to skip to another one. Be kind.'],
  searching: ['Looking for a stranger…', 'You’ll be connected as soon as someone is free.'],
  connecting: ['Stranger found!', 'Opening a direct connection…'],
  connected: ['You’re connected.', 'Say hi! Messages go straight to the stranger.'],
  ended: ['Chat ended.', 'Press Next to meet someone new.'],
  reconnecting: ['Connection lost.', 'Reconnecting. You keep your place in the queue, or your stranger, if you’re back within a few seconds.'],
};

/** Status line text for a client state and the reason it was entered. */
/** Added to the status line once the page talks to the servers over long polling. */
export const LONG_POLLING_TEXT = ' (This network blocks WebSockets: using a slower fallback connection.)';

/** The notice shown while the stranger's connection is away. */
export const UNSTABLE_TEXT = 'The stranger’s connection is unstable. Waiting for them to come back…';

export function statusText(state, reason) {
  const table = STATUS[state] || STATUS.idle;
  return table[reason] || table.default;
}

export function createView(doc = document) {
  const $ = (id) => doc.getElementById(id);
  const el = {
    app: $('app'),
    status: $('status'),
    notice: $('notice'),
    log: $('log'),
    messages: $('messages'),
    empty: $('empty-hint'),
    composer: $('composer'),
    input: $('message-input'),
    send: $('send'),
    start: $('start'),
    next: $('next'),
    stop: $('stop'),
    block: $('block'),
    report: $('report'),
    reportForm: $('report-form'),
    reportReason: $('report-reason'),
    reportCancel: $('report-cancel'),
    banned: $('banned'),
    common: $('common-interests'),
    interestsInput: $('interests-input'),
    chips: $('interest-chips'),
    videoToggle: $('video-toggle'),
    online: $('online-text'),
    stage: $('stage'),
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    remoteTile: $('remote-video').closest('.video-tile'),
  };
  let state = 'idle';
  let localOn = false;
  let remoteHasVideo = false;

  function renderHint() {
    const hasMessages = el.messages.childElementCount > 0;
    el.empty.hidden = hasMessages;
    if (hasMessages) return;
    const [title, body] = HINTS[state] || HINTS.idle;
    const [titleEl, bodyEl] = el.empty.children;
    titleEl.textContent = title;
    bodyEl.textContent = body;
  }

  function renderStage() {
    const on = localOn || remoteHasVideo;
    el.stage.hidden = !on;
    el.app.dataset.video = on ? 'on' : 'off';
    el.remoteTile.classList.toggle('has-video', remoteHasVideo);
  }

  function nearBottom() {
    return el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 80;
  }

  return {
    el,
    /** Set once the page talks to the servers over long polling (the status line says so). */
    longPolling: false,

    /** `chatting`: a chat is still open (it stays usable while reconnecting). */
    renderState(next, reason, chatting = false) {
      state = next;
      el.app.dataset.state = next;
      el.status.dataset.state = next;
      el.status.dataset.reason = reason || '';
      el.status.dataset.transport = this.longPolling ? 'long-polling' : 'websocket';
      el.status.textContent = statusText(next, reason) + (this.longPolling ? LONG_POLLING_TEXT : '');

      const hadFocus = doc.activeElement;
      const idle = next === 'idle';
      // Start while idle; Next and Stop while searching or chatting.
      el.start.disabled = el.start.hidden = !idle;
      el.next.hidden = el.stop.hidden = idle;
      el.next.disabled = !['connecting', 'connected', 'ended'].includes(next);
      el.stop.disabled = idle;
      // Block and Report while there is a stranger to refer to (also just after a chat ended).
      const withStranger = ['connecting', 'connected', 'ended'].includes(next);
      el.block.hidden = el.report.hidden = !withStranger;
      if (!withStranger) el.reportForm.hidden = true;
      if (next !== 'connecting' && next !== 'connected') el.common.hidden = true;
      el.send.disabled = !(next === 'connected' || (next === 'reconnecting' && chatting));
      // Never strand keyboard focus on a button that was just disabled.
      if (hadFocus && hadFocus.disabled) (idle ? el.start : el.stop).focus();
      renderHint();
    },

    /** Append one chat message; author is 'me' or 'stranger'. */
    addMessage(author, text) {
      const stick = author === 'me' || nearBottom();
      const item = doc.createElement('li');
      item.className = 'msg';
      item.dataset.author = author;
      const who = doc.createElement('span');
      who.className = 'msg-author';
      who.textContent = author === 'me' ? 'You' : 'Stranger';
      const sep = doc.createElement('span');
      sep.className = 'visually-hidden';
      sep.textContent = ': ';
      const body = doc.createElement('p');
      body.className = 'msg-text';
      body.textContent = text;
      item.append(who, sep, body);
      el.messages.append(item);
      renderHint();
      if (stick) el.log.scrollTop = el.log.scrollHeight;
    },

    clearMessages() {
      el.messages.replaceChildren();
      renderHint();
    },

    /** Show a one-line notice (errors, camera fallbacks); null hides it. */
    showNotice(text, kind = 'info') {
      el.notice.textContent = text || '';
      el.notice.hidden = !text;
      el.notice.dataset.kind = text ? kind : '';
    },

    /** Hide the notice unless it is the stranger-unstable one (which partner-unstable clears). */
    clearNotice() {
      if (el.notice.dataset.kind !== 'unstable') this.showNotice(null);
    },

    /** Show or hide "the stranger's connection is unstable". */
    setPartnerUnstable(unstable) {
      if (unstable) this.showNotice(UNSTABLE_TEXT, 'unstable');
      else if (el.notice.dataset.kind === 'unstable') this.showNotice(null);
    },

    /** Show the interests as removable chips; `onRemove(interest)` when one is removed. */
    renderInterests(list, onRemove) {
      const items = list.map((interest) => {
        const chip = doc.createElement('li');
        chip.className = 'chip';
        chip.setAttribute('data-testid', 'interest-chip');
        chip.dataset.interest = interest;
        const text = doc.createElement('span');
        text.textContent = interest;
        const remove = doc.createElement('button');
        remove.type = 'button';
        remove.textContent = '×';
        remove.setAttribute('aria-label', `Remove ${interest}`);
        remove.addEventListener('click', () => onRemove(interest));
        chip.append(text, remove);
        return chip;
      });
      el.chips.replaceChildren(...items);
    },

    /** After `matched`: what the two share, or that the match is a random one. */
    showCommonInterests(common, asked) {
      if (common.length > 0) el.common.textContent = `You both like: ${common.join(', ')}`;
      else if (asked) el.common.textContent = 'You’re now chatting with a random stranger.';
      el.common.hidden = !(common.length > 0 || asked);
    },

    showReportForm(shown) {
      el.reportForm.hidden = !shown;
      if (shown) el.reportReason.focus();
    },

    /** A ban: when it ends (ms since the epoch), or 0 when there is none (any more). */
    showBanned(until) {
      const left = Math.max(0, until - Date.now());
      el.banned.hidden = left === 0;
      el.start.disabled = left > 0 || state !== 'idle';
      if (left === 0) {
        el.banned.textContent = '';
        return;
      }
      const minutes = Math.ceil(left / 60000);
      const time = minutes >= 120 ? `${Math.ceil(minutes / 60)} hours` : minutes > 1 ? `${minutes} minutes` : 'a minute';
      el.banned.textContent = `You were reported by several people and can’t meet strangers for ${time}.`;
    },

    setOnline(count) {
      el.online.textContent = Number.isFinite(count) ? `${count.toLocaleString()} online` : '– online';
    },

    setVideoToggle(pressed, busy = false) {
      el.videoToggle.setAttribute('aria-pressed', String(pressed));
      el.videoToggle.disabled = busy;
    },

    setLocalStream(stream) {
      localOn = Boolean(stream);
      el.localVideo.srcObject = stream || null;
      el.localVideo.closest('.video-tile').hidden = !stream;
      if (stream) playQuietly(el.localVideo);
      renderStage();
    },

    setRemoteStream(stream) {
      if (el.remoteVideo.srcObject !== stream) el.remoteVideo.srcObject = stream || null;
      remoteHasVideo = Boolean(stream && stream.getVideoTracks().some((t) => t.readyState === 'live' && !t.muted));
      if (stream) playQuietly(el.remoteVideo);
      renderStage();
    },

    /** Grow the message box with its content, up to the CSS max-height. */
    fitInput() {
      el.input.style.height = 'auto';
      el.input.style.height = `${el.input.scrollHeight + 2}px`;
    },
  };
}

// play() rejects when autoplay is not allowed or a new source replaced the old
// one; neither is an error worth reporting, and the video plays on the next try.
function playQuietly(video) {
  const p = video.play();
  if (p) p.catch(() => {});
}
