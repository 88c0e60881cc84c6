//! Tests only: see `tests/matchbox_socket.rs`.
#![forbid(unsafe_code)]
