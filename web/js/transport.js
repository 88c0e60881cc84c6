// Transports: how JSON messages get to and from a service (the matchmaker
// link and each match's signaler connection use only this interface). A
// WebSocket, or, where a network blocks WebSockets, HTTP long-polling (the
// contract's `/lp` routes); `autoTransport` tries the first and falls back to
// the second by itself.
//
//   const t = factory(url, {
//     open()               // the transport can carry messages now
//     message(msg)         // one parsed JSON object from the server
//     close({code, reason})// it ended (once); code 1006 when it dropped without a close frame
//   });
//   t.send(msg)            // -> true if handed over, false if not open
//   t.close(code, reason)  // end it from our side; no `close` callback follows
//
// `code` follows WebSocket close codes, whatever the transport: 1000/1001 are
// goodbyes, 1012 a restarting instance, 4000 replaced, 1006 a drop.

/** The default transport: one WebSocket carrying one JSON object per text frame. */
export function webSocketTransport(url, handlers) {
  const ws = new WebSocket(url); // throws on a malformed URL
  let done = false;
  const finish = (code, reason) => {
    if (done) return;
    done = true;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    handlers.close({ code, reason });
  };
  ws.onopen = () => {
    if (!done) handlers.open();
  };
  ws.onmessage = (ev) => {
    if (done) return;
    const msg = parseJson(ev.data);
    if (msg && typeof msg.type === 'string') handlers.message(msg);
  };
  ws.onclose = (ev) => finish(ev.code || 1006, ev.reason || '');
  ws.onerror = () => {}; // always followed by onclose
  return {
    send(msg) {
      if (done || ws.readyState !== WebSocket.OPEN) return false;
      try {
        ws.send(JSON.stringify(msg));
        return true;
      } catch {
        return false;
      }
    },
    close(code = 1000, reason = '') {
      if (done) return;
      done = true;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        if (ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
      } catch {
        /* already closing */
      }
    },
  };
}

/** Open a WebSocket that has not opened after this long counts as blocked. */
export const WEBSOCKET_OPEN_TIMEOUT_MS = 4000;

/** `ws(s)://host/…/ws` -> `http(s)://host/…/lp`: the long-polling routes of the same service. */
export function longPollUrl(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = url.pathname.replace(/\/ws$/, '') + '/lp';
  url.search = '';
  return url.toString();
}

/**
 * The same messages over HTTP long-polling: `POST /lp` opens a session, one
 * `GET /lp/{sid}?ack=N` at a time waits for events (each delivered once, in
 * order, by its `seq`), `POST /lp/{sid}` carries what we send (in order, one
 * request at a time), `DELETE` says goodbye.
 */
export function longPollTransport(wsUrl, handlers) {
  const base = longPollUrl(wsUrl);
  let sid = null;
  let seen = 0;
  let done = false;
  let outgoing = [];
  let posting = false;
  const stop = new AbortController();
  const finish = (code, reason) => {
    if (done) return;
    done = true;
    stop.abort();
    handlers.close({ code, reason });
  };
  const deliver = (answer) => {
    for (const event of Array.isArray(answer.events) ? answer.events : []) {
      if (done || typeof event.seq !== 'number' || event.seq <= seen) continue;
      seen = event.seq;
      if (event.msg && typeof event.msg.type === 'string') handlers.message(event.msg);
    }
    if (answer.closed && typeof answer.closed.code === 'number') finish(answer.closed.code, String(answer.closed.reason || ''));
  };
  const request = async (method, url, body) => {
    const init = { method, signal: stop.signal, cache: 'no-store' };
    if (body !== undefined) {
      init.body = body;
      init.headers = { 'Content-Type': 'text/plain' }; // a simple request: no preflight
    }
    return fetch(url, init);
  };
  const pollLoop = async () => {
    while (!done) {
      let answer;
      try {
        const res = await request('GET', `${base}/${sid}?ack=${seen}`);
        if (!res.ok) return finish(1006, `poll answered ${res.status}`);
        answer = await res.json();
      } catch {
        return finish(1006, 'poll failed');
      }
      deliver(answer);
    }
  };
  const flush = async () => {
    if (posting || done || sid === null || outgoing.length === 0) return;
    posting = true;
    const batch = outgoing;
    outgoing = [];
    try {
      const res = await request('POST', `${base}/${sid}`, JSON.stringify(batch));
      if (!res.ok) finish(res.status === 413 ? 1009 : 1006, `send answered ${res.status}`);
    } catch {
      finish(1006, 'send failed');
    }
    posting = false;
    flush();
  };
  (async () => {
    let answer;
    try {
      const res = await request('POST', base, '');
      if (!res.ok) return finish(1006, `open answered ${res.status}`);
      answer = await res.json();
    } catch {
      return finish(1006, 'open failed');
    }
    if (done || typeof answer.sid !== 'string') return finish(1006, 'no session');
    sid = answer.sid;
    handlers.open();
    deliver(answer);
    pollLoop();
    flush();
  })();
  return {
    kind: 'long-polling',
    send(msg) {
      if (done || sid === null) return false;
      outgoing.push(msg);
      flush();
      return true;
    },
    close() {
      if (done) return;
      done = true;
      stop.abort();
      // A goodbye in every case: the server forgets the session at once.
      if (sid !== null) fetch(`${base}/${sid}`, { method: 'DELETE', keepalive: true }).catch(() => {});
    },
  };
}

// Once a long-polling session opened where a WebSocket did not, later
// connections of this page go straight to long-polling.
let webSocketsBlocked = false;

/** Whether this page fell back to long-polling. */
export function usingLongPolling() {
  return webSocketsBlocked;
}

/**
 * A WebSocket, or long-polling when a WebSocket cannot be opened (it closes
 * before it opens, or does not open within WEBSOCKET_OPEN_TIMEOUT_MS). The
 * failed WebSocket is never reported to `handlers`.
 */
export function autoTransport(url, handlers, { openTimeoutMs = WEBSOCKET_OPEN_TIMEOUT_MS } = {}) {
  let current = null;
  let timer = null;
  const fallBack = () => {
    clearTimeout(timer);
    current = longPollTransport(url, {
      open() {
        webSocketsBlocked = true;
        handlers.open();
      },
      message: handlers.message,
      close: handlers.close,
    });
  };
  if (webSocketsBlocked) {
    fallBack();
  } else {
    let opened = false;
    const ws = webSocketTransport(url, {
      open() {
        opened = true;
        clearTimeout(timer);
        handlers.open();
      },
      message: handlers.message,
      close(ev) {
        if (opened) handlers.close(ev);
        else if (current === ws || current === null) fallBack();
      },
    });
    if (current === null) current = ws;
    timer = setTimeout(() => {
      if (opened || current !== ws) return;
      ws.close(1000, 'too slow to open');
      fallBack();
    }, openTimeoutMs);
  }
  return {
    send: (msg) => current.send(msg),
    close(code, reason) {
      clearTimeout(timer);
      current.close(code, reason);
    },
  };
}

/** Parse a text frame into a JSON object, or null. */
export function parseJson(data) {
  if (typeof data !== 'string') return null;
  try {
    const value = JSON.parse(data);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Exponential backoff with "equal jitter": attempt 0 -> base/2..base, capped. */
export function backoffDelay(attempt, baseMs, capMs) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
