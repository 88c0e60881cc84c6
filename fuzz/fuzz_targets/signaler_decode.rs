//! Fuzz target `signaler_decode`: see [`strangers_fuzz::signaler_decode`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::signaler_decode(data));
