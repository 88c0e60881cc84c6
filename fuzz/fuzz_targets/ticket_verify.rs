//! Fuzz target `ticket_verify`: see [`strangers_fuzz::ticket_verify`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::ticket_verify(data));
