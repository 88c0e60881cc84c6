//! Resume tokens: what a client shows on a new socket to be itself again after a drop.
//!
//! A token names an id and a generation, signed (HMAC-SHA256, truncated to 128 bits) with a
//! key derived from `ROOM_TICKET_SECRET`, so any instance can check it without asking anyone.
//! Whether it still works (the client is there, the generation is the current one, so a token
//! works once) is for the rules to say. A domain byte keeps a matchmaker token from passing as
//! a signaler one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the signature kept in a token.
const TAG_BYTES: usize = 16;
/// Bytes of what a token says: domain, two ids, generation.
const BODY_BYTES: usize = 1 + 16 + 16 + 4;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Domain {
    /// A matchmaker client (`ready`, `resumed`).
    Matchmaker = 1,
    /// A peer in a room joined by code (`joined`).
    Room = 2,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The client (or peer) it resumes.
    pub id: Uuid,
    /// The room, for a room token; nil otherwise.
    pub scope: Uuid,
    /// Its generation.
    pub generation: u32,
}

/// Issues and checks resume tokens.
#[derive(Clone)]
pub struct ResumeTokens {
    key: HmacSha256,
}

impl std::fmt::Debug for ResumeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeTokens").finish_non_exhaustive()
    }
}

impl ResumeTokens {
    /// Tokens keyed from the shared secret (a key of its own, so that no ticket or other MAC
    /// made with the secret can pass as a token).
    pub fn new(secret: &[u8]) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        derive.update(b"strangers resume token v1");
        let key = derive.finalize().into_bytes();
        ResumeTokens { key: HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable!("HMAC takes any key")) }
    }

    /// A token for `claim` in `domain`.
    pub fn issue(&self, domain: Domain, claim: Claim) -> String {
        let body = body(domain, claim);
        let mut mac = self.key.clone();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let mut token = Vec::with_capacity(BODY_BYTES + TAG_BYTES);
        token.extend_from_slice(&body);
        token.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// What a token of `domain` says, if it is one of ours (checked in constant time).
    pub fn verify(&self, domain: Domain, token: &str) -> Option<Claim> {
        if token.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != BODY_BYTES + TAG_BYTES || bytes[0] != domain as u8 {
            return None;
        }
        let (body, tag) = bytes.split_at(BODY_BYTES);
        let mut mac = self.key.clone();
        mac.update(body);
        mac.verify_truncated_left(tag).ok()?;
        let id = Uuid::from_slice(&body[1..17]).ok()?;
        let scope = Uuid::from_slice(&body[17..33]).ok()?;
        let generation = u32::from_be_bytes(body[33..37].try_into().ok()?);
        Some(Claim { id, scope, generation })
    }
}

fn body(domain: Domain, claim: Claim) -> [u8; BODY_BYTES] {
    let mut body = [0u8; BODY_BYTES];
    body[0] = domain as u8;
    body[1..17].copy_from_slice(claim.id.as_bytes());
    body[17..33].copy_from_slice(claim.scope.as_bytes());
    body[33..37].copy_from_slice(&claim.generation.to_be_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ResumeTokens {
        ResumeTokens::new(b"0123456789abcdef0123456789abcdef")
    }

    fn claim() -> Claim {
        Claim { id: Uuid::new_v4(), scope: Uuid::nil(), generation: 3 }
    }

    #[test]
    fn a_token_says_what_it_was_issued_for() {
        let claim = claim();
        let token = tokens().issue(Domain::Matchmaker, claim);
        assert_eq!(tokens().verify(Domain::Matchmaker, &token), Some(claim));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let token = tokens().issue(Domain::Matchmaker, claim());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[36] ^= 1; // another generation
        assert_eq!(tokens().verify(Domain::Matchmaker, &URL_SAFE_NO_PAD.encode(&bytes)), None);
    }

    #[test]
    fn a_token_from_another_secret_or_domain_is_refused() {
        let token = tokens().issue(Domain::Matchmaker, claim());
        assert_eq!(ResumeTokens::new(b"another secret").verify(Domain::Matchmaker, &token), None);
        assert_eq!(tokens().verify(Domain::Room, &token), None);
    }

    #[test]
    fn garbage_is_refused() {
        for token in ["", "x", "!!!!", &"A".repeat(200), &"A".repeat(70)] {
            assert_eq!(tokens().verify(Domain::Matchmaker, token), None, "{token}");
        }
    }
}
