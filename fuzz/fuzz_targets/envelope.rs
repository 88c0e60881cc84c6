//! Fuzz target `envelope`: see [`strangers_fuzz::envelope`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strangers_fuzz::envelope(data));
