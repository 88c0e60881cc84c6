//! Fuzz target `ticket_parts`: see [`strangers_fuzz::ticket_parts`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::ticket_parts(data));
