//! Inputs the fuzzers once crashed on (`fuzz/regressions/<target>/`), and their seeds, run
//! through exactly the checks of the fuzz targets (`fuzz/src/lib.rs`) without the fuzzer.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs every file under `fuzz/<folder>/<target>/` through `check`; returns how many ran.
fn run(folder: &str, target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(folder).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut ran = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&input));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
        ran += 1;
    }
    ran
}

#[test]
fn matchmaker_decoding_survives_every_kept_input() {
    assert!(
        run("regressions", "matchmaker_decode", checks::matchmaker_decode)
            + run("seeds", "matchmaker_decode", checks::matchmaker_decode)
            > 0
    );
}

#[test]
fn signaler_decoding_and_relaying_survive_every_kept_input() {
    assert!(
        run("regressions", "signaler_decode", checks::signaler_decode)
            + run("seeds", "signaler_decode", checks::signaler_decode)
            > 0
    );
}

#[test]
fn the_envelope_survives_every_kept_input() {
    assert!(run("regressions", "envelope", checks::envelope) + run("seeds", "envelope", checks::envelope) > 0);
}

#[test]
fn ticket_verification_survives_every_kept_input() {
    assert!(
        run("regressions", "ticket_verify", checks::ticket_verify)
            + run("seeds", "ticket_verify", checks::ticket_verify)
            > 0
    );
}

#[test]
fn tickets_of_any_header_and_claims_survive_every_kept_input() {
    assert!(
        run("regressions", "ticket_parts", checks::ticket_parts) + run("seeds", "ticket_parts", checks::ticket_parts)
            > 0
    );
}

#[test]
fn no_edit_of_a_genuine_ticket_admits_anyone_else() {
    assert!(
        run("regressions", "ticket_tamper", checks::ticket_tamper)
            + run("seeds", "ticket_tamper", checks::ticket_tamper)
            > 0
    );
}
