//! The signaler's matchbox rooms as a WebAssembly component: a WASI HTTP server (the
//! `wasi:http/proxy` world) for `wasmtime serve`, serving the API of matchbox's WASI server at
//! its root: `GET /health`, `GET /poll/{room}`, `GET /poll/{room}?peer_id=…`, `POST /signal`.
//! The rooms are the rules core's ([`rules::matchbox::PolledRooms`]), as on the signaler.
//!
//! `wasmtime serve` gives every request a fresh instance, so nothing survives in memory: the
//! state lives in a file in the directory mapped at `/` (`--dir .::/`), read and written under a
//! lock file by each request ([`store`]). WASI HTTP has no WebSocket upgrade, so clients poll.
//!
//! Layout: [`api`] (a request in, an answer out: pure), [`store`] (the state file),
//! `component` (the WASI glue, built for `wasm32-wasip2` only).
#![forbid(unsafe_code)]

pub mod api;
pub mod store;

#[cfg(target_os = "wasi")]
mod component;
