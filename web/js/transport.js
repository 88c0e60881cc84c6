// Transports for the matchmaker link: how JSON messages get to and from the
// matchmaker. The link (matchmaker-link.js) only ever uses this interface, so
// a long-polling transport can slot in later next to the WebSocket one.
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
