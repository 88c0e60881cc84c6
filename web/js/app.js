// The page's wiring: user input -> StrangerClient, client events -> view.

import { StrangerClient, State, fetchStats, normalizeInterests } from './client.js';
import { usingLongPolling } from './transport.js';
import { createView } from './view.js';

const STATS_PERIOD_MS = 10000;
const INTERESTS_KEY = 'strangers.interests';

const view = createView(document);
const { el } = view;
const client = new StrangerClient({ interests: savedInterests() });
let localStream = null;
let banTimer = null;

// ---- client -> view --------------------------------------------------------

client.addEventListener('statechange', (ev) => {
  const { state, reason, chatting } = ev.detail;
  view.longPolling = usingLongPolling();
  view.renderState(state, reason, chatting);
  view.showBanned(client.bannedUntil);
  if (state === State.CONNECTED) view.clearNotice();
  scheduleStats();
});

client.addEventListener('matched', (ev) => {
  // A new stranger: the old conversation goes away.
  view.clearMessages();
  view.showNotice(null);
  view.showCommonInterests(ev.detail.commonInterests, ev.detail.askedInterests);
});

client.addEventListener('banned', () => {
  view.showBanned(client.bannedUntil);
  // Count the time down, and give Start back when the ban is over.
  clearInterval(banTimer);
  banTimer = setInterval(() => {
    view.showBanned(client.bannedUntil);
    if (Date.now() >= client.bannedUntil) clearInterval(banTimer);
  }, 15000);
});

client.addEventListener('reported', () => view.showNotice('Thanks for the report. Our moderators will look at it.'));

client.addEventListener('message', (ev) => view.addMessage('stranger', ev.detail.text));

// A blip on the stranger's side: say so, and take it back when they are back.
client.addEventListener('partner-unstable', (ev) => view.setPartnerUnstable(ev.detail.unstable));

client.addEventListener('remotestream', (ev) => view.setRemoteStream(ev.detail.stream));

client.addEventListener('error', (ev) => view.showNotice(errorText(ev.detail)));

function errorText({ code, message }) {
  switch (code) {
    case 'banned':
      return null; // the ban has a line of its own
    case 'rate-limited':
      return 'Slow down a little, then try again.';
    case 'unavailable':
      return 'The service is busy right now. Please try again in a moment.';
    case 'bad-ticket':
    case 'room-full':
      return 'Couldn’t join that chat. Press Next to meet someone else.';
    case 'signaling-lost':
      return 'Lost the connection while meeting the stranger. Press Next to try again.';
    case 'webrtc':
    case 'webrtc-unavailable':
      return 'Your browser couldn’t open a connection to the stranger. Press Next to try again.';
    default:
      return message ? `Something went wrong: ${message}` : 'Something went wrong.';
  }
}

// ---- user -> client --------------------------------------------------------

el.start.addEventListener('click', () => client.start());
el.block.addEventListener('click', () => client.block());
el.report.addEventListener('click', () => view.showReportForm(el.reportForm.hidden));
el.reportCancel.addEventListener('click', () => view.showReportForm(false));
el.reportForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  client.report(el.reportReason.value);
  view.showReportForm(false);
});

// ---- interests: chips, remembered in localStorage ------------------------------

function savedInterests() {
  try {
    return normalizeInterests(JSON.parse(localStorage.getItem(INTERESTS_KEY) || '[]'));
  } catch {
    return [];
  }
}

function setInterests(list) {
  const kept = client.setInterests(list);
  try {
    localStorage.setItem(INTERESTS_KEY, JSON.stringify(kept));
  } catch {
    // Private mode or storage full: the interests still apply to this page.
  }
  view.renderInterests(kept, (gone) => setInterests(client.interests.filter((i) => i !== gone)));
}

el.interestsInput.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Enter' || ev.isComposing) return;
  ev.preventDefault();
  const typed = el.interestsInput.value;
  if (!typed.trim()) return;
  setInterests([...client.interests, typed]);
  el.interestsInput.value = '';
});
el.next.addEventListener('click', () => client.next());
el.stop.addEventListener('click', () => client.stop());

el.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const sent = client.send(el.input.value);
  if (sent === null) return;
  view.addMessage('me', sent);
  el.input.value = '';
  view.fitInput();
});

el.input.addEventListener('keydown', (ev) => {
  // Enter sends; Shift+Enter adds a line; never interrupt an IME composition.
  if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing) return;
  ev.preventDefault();
  el.composer.requestSubmit();
});

el.input.addEventListener('input', () => view.fitInput());

el.videoToggle.addEventListener('click', async () => {
  if (localStream) {
    for (const track of localStream.getTracks()) track.stop();
    localStream = null;
    client.setMedia(null);
    view.setLocalStream(null);
    view.setVideoToggle(false);
    return;
  }
  view.setVideoToggle(false, true);
  try {
    localStream = await openCamera();
    client.setMedia(localStream);
    view.setLocalStream(localStream);
    view.setVideoToggle(true);
    view.clearNotice();
  } catch (err) {
    view.setVideoToggle(false);
    view.showNotice(cameraErrorText(err));
  }
});

async function openCamera() {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia) {
    const err = new Error('getUserMedia is not available');
    err.name = 'NotSupportedError';
    throw err;
  }
  return media.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
    audio: { echoCancellation: true, noiseSuppression: true },
  });
}

function cameraErrorText(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return 'Camera and microphone access was refused. Continuing with text only.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return 'No camera or microphone was found. Continuing with text only.';
  if (name === 'NotReadableError')
    return 'Your camera or microphone is busy in another app. Continuing with text only.';
  if (name === 'NotSupportedError')
    return 'This browser can’t use a camera here (a secure https page is needed). Continuing with text only.';
  return 'The camera couldn’t be started. Continuing with text only.';
}

// ---- "N online" ----------------------------------------------------------------

let statsTimer = null;
let statsInFlight = false;

function scheduleStats(delay = 100) {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(refreshStats, delay);
}

async function refreshStats() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(refreshStats, STATS_PERIOD_MS);
  // Skip while hidden, and while the server is known to be unreachable.
  if (document.hidden || statsInFlight || client.state === State.RECONNECTING) return;
  statsInFlight = true;
  try {
    const stats = await fetchStats();
    view.setOnline(stats.online);
  } catch {
    view.setOnline(null);
  } finally {
    statsInFlight = false;
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) scheduleStats(0);
});

// Leave the queue and any chat promptly when the page goes away: close code
// 1000 on both sockets, a goodbye, so the server keeps no seat for us.
window.addEventListener('pagehide', () => client.close());

view.renderState(client.state, client.reason);
setInterests(client.interests);
view.fitInput();
client.connect();
scheduleStats(0);
