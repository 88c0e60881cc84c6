// A small TCP proxy for the browser tests: it relays bytes between a page and
// the services and can cut every connection it carries without a close frame
// (the TCP sockets are reset), like a network drop or a phone changing networks.

import net from 'node:net';
import { Transform } from 'node:stream';

/** A stream that adds `X-Forwarded-For` after the request line of the first request. */
function withForwardedFor(address) {
  let pending = Buffer.alloc(0);
  let done = false;
  return new Transform({
    transform(chunk, _encoding, callback) {
      if (done) return callback(null, chunk);
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n');
      if (end < 0) return callback();
      done = true;
      const head = pending.subarray(0, end + 2);
      const rest = pending.subarray(end + 2);
      pending = Buffer.alloc(0);
      callback(null, Buffer.concat([head, Buffer.from(`X-Forwarded-For: ${address}\r\n`), rest]));
    },
  });
}

/**
 * Listen on `host:port` for each of `routes` ({listenPort, target: () => ({host, port}),
 * forwardedFor?}) and relay to the target each new connection's route names at that
 * moment. With `forwardedFor`, the proxy says so as a reverse proxy would: the first
 * request of each connection gets `X-Forwarded-For: <forwardedFor>`.
 */
export async function startProxy(host, routes) {
  const live = new Set();
  const servers = [];
  let accepted = 0;
  let refusing = false;
  for (const route of routes) {
    const server = net.createServer((client) => {
      accepted += 1;
      if (refusing) {
        client.on('error', () => {});
        client.resetAndDestroy(); // the network is "down": every new connection is reset
        return;
      }
      const { host: toHost, port: toPort } = route.target();
      const upstream = net.connect(toPort, toHost);
      const pair = { client, upstream };
      live.add(pair);
      const drop = () => {
        live.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      if (route.forwardedFor) {
        client.pipe(withForwardedFor(route.forwardedFor)).pipe(upstream);
      } else {
        client.pipe(upstream);
      }
      upstream.pipe(client);
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(route.listenPort, host, resolve);
    });
    servers.push(server);
  }
  return {
    /** Connections accepted so far. */
    get accepted() {
      return accepted;
    },
    /** How many connections are being relayed. */
    get open() {
      return live.size;
    },
    ports: servers.map((s) => s.address().port),
    /** While true, new connections are reset at once (an outage); false relays again. */
    set refusing(on) {
      refusing = Boolean(on);
    },
    /** Reset every relayed connection (RST both ways: no close frame, no FIN). */
    cut() {
      const n = live.size;
      for (const { client, upstream } of [...live]) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      live.clear();
      return n;
    },
    async close() {
      refusing = true;
      this.cut();
      const closed = Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      for (const s of servers) s.unref();
      // Never hang a test's teardown on a straggling connection.
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    },
  };
}

/** Proxy `host:port` -> `127.0.0.1:port` for each port: same port numbers, another loopback address. */
export function mirrorPorts(host, ports, toHost = '127.0.0.1') {
  return startProxy(
    host,
    ports.map((port) => ({ listenPort: port, target: () => ({ host: toHost, port }) })),
  );
}

/**
 * Like a network that blocks WebSockets: proxy `host:port` -> `toHost:port` for each port, but
 * answer every WebSocket upgrade with HTTP 403. Plain HTTP requests go through.
 */
export async function refuseWebSockets(host, ports, toHost = '127.0.0.1') {
  const servers = [];
  let refused = 0;
  for (const port of ports) {
    const server = net.createServer((client) => {
      client.on('error', () => {});
      client.once('data', (first) => {
        // A browser opens each WebSocket on a connection of its own: its first request tells.
        if (/\r\nupgrade:\s*websocket/i.test(first.toString('latin1'))) {
          refused += 1;
          client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          return;
        }
        const upstream = net.connect(port, toHost);
        upstream.on('error', () => client.destroy());
        upstream.on('close', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    servers.push(server);
  }
  return {
    refused: () => refused,
    close: () => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))),
  };
}
