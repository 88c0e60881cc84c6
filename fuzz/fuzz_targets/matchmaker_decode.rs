//! Fuzz target `matchmaker_decode`: see [`strangers_fuzz::matchmaker_decode`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::matchmaker_decode(data));
