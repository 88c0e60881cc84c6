//! Randomness from the operating system, for ids people must not guess.

/// A fresh UUID v4 from the operating system's randomness.
pub fn uuid() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

/// A room-id source for the rules, seeded from the operating system (two UUID v4s: 244 random
/// bits).
pub fn ids() -> rules::Ids {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    rules::Ids::from_seed(seed)
}
