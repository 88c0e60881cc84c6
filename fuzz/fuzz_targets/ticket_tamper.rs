//! Fuzz target `ticket_tamper`: see [`strangers_fuzz::ticket_tamper`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::ticket_tamper(data));
