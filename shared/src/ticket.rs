//! Room tickets: a JWT (HS256) that binds one room to one client until it expires.
//!
//! The matchmaker signs them and the signaler verifies them with the shared
//! `ROOM_TICKET_SECRET`; the two services never call each other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ErrorCode, Rejected};

/// The audience every ticket carries, so that no other JWT signed with the same secret (an
/// `auth` token, say) passes as a ticket.
const AUDIENCE: &str = "signaler";

/// What a ticket says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    /// The client the ticket admits.
    sub: Uuid,
    /// The room it admits to.
    room: Uuid,
    aud: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// A verified ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The room.
    pub room: Uuid,
    /// The client it names.
    pub peer: Uuid,
    /// When the ticket stops admitting (seconds since the Unix epoch).
    pub expires_at: u64,
}

/// Signs and verifies tickets with one secret and one time to live.
#[derive(Clone)]
pub struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// The same checks but expiry: an away peer comes back with the ticket it joined with.
    validation_any_age: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Tickets {
    /// Tickets signed with `secret`, valid for `ttl` after issue.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Both ends are our own servers: no leeway, and a ticket from the future is refused.
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "aud"]);
        let mut validation_any_age = validation.clone();
        validation_any_age.validate_exp = false;
        Tickets {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            validation_any_age,
            ttl,
        }
    }

    /// How long a ticket admits its holder.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues the ticket that admits `peer` to `room`.
    pub fn issue(&self, room: Uuid, peer: Uuid) -> String {
        let now = unix_now();
        let claims =
            Claims { sub: peer, room, aud: AUDIENCE.to_owned(), iat: now, nbf: now, exp: now + self.ttl.as_secs() };
        // HMAC signing of a small struct with a valid key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_else(|err| {
            tracing::error!(%err, "failed to sign a ticket");
            String::new()
        })
    }

    /// Checks a ticket presented for `room_id`.
    ///
    /// # Errors
    /// `bad-ticket` when the ticket is malformed, signed with another key or algorithm,
    /// expired, not yet valid, or for another room.
    pub fn verify(&self, ticket: &str, room_id: &str) -> Result<Admission, Rejected> {
        self.check(ticket, room_id, &self.validation)
    }

    /// Checks a ticket presented for `room_id` like [`Tickets::verify`], but lets an expired one
    /// through: whether it still admits (its holder is away and coming back) is the room's call,
    /// by [`Admission::expires_at`].
    ///
    /// # Errors
    /// `bad-ticket` when the ticket is malformed, signed with another key or algorithm, not yet
    /// valid, or for another room.
    pub fn verify_any_age(&self, ticket: &str, room_id: &str) -> Result<Admission, Rejected> {
        self.check(ticket, room_id, &self.validation_any_age)
    }

    fn check(&self, ticket: &str, room_id: &str, validation: &Validation) -> Result<Admission, Rejected> {
        let data = jsonwebtoken::decode::<Claims>(ticket, &self.decoding, validation)
            .map_err(|err| Rejected::new(ErrorCode::BadTicket, format!("ticket refused: {err}")))?;
        let claims = data.claims;
        if Uuid::parse_str(room_id).ok() != Some(claims.room) {
            return Err(Rejected::new(ErrorCode::BadTicket, "ticket is for another room"));
        }
        Ok(Admission { room: claims.room, peer: claims.sub, expires_at: claims.exp })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tickets() -> Tickets {
        Tickets::new(SECRET, Duration::from_secs(60))
    }

    fn sign(claims: &Claims, alg: Algorithm, secret: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn claims(room: Uuid, peer: Uuid, iat: u64, exp: u64) -> Claims {
        Claims { sub: peer, room, aud: AUDIENCE.into(), iat, nbf: iat, exp }
    }

    #[test]
    fn a_ticket_admits_its_holder_to_its_room() {
        let (room, peer) = (Uuid::new_v4(), Uuid::new_v4());
        let admission = tickets().verify(&tickets().issue(room, peer), &room.to_string()).unwrap();
        assert_eq!((admission.room, admission.peer), (room, peer));
    }

    #[test]
    fn a_ticket_for_another_room_is_refused() {
        let ticket = tickets().issue(Uuid::new_v4(), Uuid::new_v4());
        let err = tickets().verify(&ticket, &Uuid::new_v4().to_string()).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadTicket);
        assert_eq!(tickets().verify(&ticket, "not-a-uuid").unwrap_err().code, ErrorCode::BadTicket);
    }

    #[test]
    fn a_tampered_ticket_is_refused() {
        let room = Uuid::new_v4();
        let ticket = tickets().issue(room, Uuid::new_v4());
        let mut parts: Vec<String> = ticket.split('.').map(String::from).collect();
        let forged = claims(room, Uuid::new_v4(), unix_now(), unix_now() + 60);
        parts[1] = sign(&forged, Algorithm::HS256, SECRET).split('.').nth(1).unwrap().to_string();
        assert!(tickets().verify(&parts.join("."), &room.to_string()).is_err());
        assert!(tickets().verify("garbage", &room.to_string()).is_err());
        assert!(tickets().verify("", &room.to_string()).is_err());
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let room = Uuid::new_v4();
        let now = unix_now();
        let ticket = sign(&claims(room, Uuid::new_v4(), now - 120, now - 60), Algorithm::HS256, SECRET);
        assert_eq!(tickets().verify(&ticket, &room.to_string()).unwrap_err().code, ErrorCode::BadTicket);
    }

    #[test]
    fn a_ticket_from_the_future_is_refused() {
        let room = Uuid::new_v4();
        let now = unix_now();
        let ticket = sign(&claims(room, Uuid::new_v4(), now + 600, now + 660), Algorithm::HS256, SECRET);
        assert!(tickets().verify(&ticket, &room.to_string()).is_err());
    }

    #[test]
    fn a_ticket_signed_with_another_key_or_algorithm_is_refused() {
        let room = Uuid::new_v4();
        let c = claims(room, Uuid::new_v4(), unix_now(), unix_now() + 60);
        let other_key = sign(&c, Algorithm::HS256, b"another-secret-another-secret-xx");
        assert!(tickets().verify(&other_key, &room.to_string()).is_err());
        let other_alg = sign(&c, Algorithm::HS512, SECRET);
        assert!(tickets().verify(&other_alg, &room.to_string()).is_err());
    }

    #[test]
    fn an_unsigned_alg_none_ticket_is_refused() {
        use base64_free::encode_url;
        let room = Uuid::new_v4();
        let c = claims(room, Uuid::new_v4(), unix_now(), unix_now() + 60);
        let header = encode_url(br#"{"alg":"none","typ":"JWT"}"#);
        let body = encode_url(serde_json::to_string(&c).unwrap().as_bytes());
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            assert!(tickets().verify(&token, &room.to_string()).is_err());
        }
    }

    /// A token with exactly this header and these claims, HMAC-signed with `secret` using `alg`.
    fn forge(header: &serde_json::Value, claims: &serde_json::Value, alg: Algorithm, secret: &[u8]) -> String {
        use base64_free::encode_url;
        let signed =
            format!("{}.{}", encode_url(header.to_string().as_bytes()), encode_url(claims.to_string().as_bytes()));
        let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), &EncodingKey::from_secret(secret), alg).unwrap();
        format!("{signed}.{signature}")
    }

    /// Claims of a ticket valid now, as JSON to tamper with.
    fn json_claims(room: Uuid) -> serde_json::Value {
        let now = unix_now();
        serde_json::json!({"sub": Uuid::new_v4(), "room": room, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 60})
    }

    fn refused(ticket: &str, room: Uuid) -> bool {
        tickets().verify(ticket, &room.to_string()).is_err_and(|err| err.code == ErrorCode::BadTicket)
    }

    #[test]
    fn the_forging_helper_makes_tickets_we_accept() {
        // So that every refusal below is down to the one trick it tries.
        let room = Uuid::new_v4();
        let ticket =
            forge(&serde_json::json!({"alg":"HS256","typ":"JWT"}), &json_claims(room), Algorithm::HS256, SECRET);
        assert!(tickets().verify(&ticket, &room.to_string()).is_ok());
    }

    #[test]
    fn alg_none_in_any_spelling_is_refused_even_with_a_valid_signature() {
        let room = Uuid::new_v4();
        for alg in ["none", "None", "NONE", "nOnE", ""] {
            let ticket =
                forge(&serde_json::json!({"alg": alg, "typ":"JWT"}), &json_claims(room), Algorithm::HS256, SECRET);
            assert!(refused(&ticket, room), "alg {alg:?}");
            let unsigned = ticket.rsplit_once('.').unwrap().0.to_owned() + ".";
            assert!(refused(&unsigned, room), "alg {alg:?} unsigned");
        }
    }

    #[test]
    fn a_header_without_alg_is_refused() {
        let room = Uuid::new_v4();
        let ticket = forge(&serde_json::json!({"typ":"JWT"}), &json_claims(room), Algorithm::HS256, SECRET);
        assert!(refused(&ticket, room));
    }

    #[test]
    fn a_ticket_signed_with_another_hmac_algorithm_is_refused() {
        let room = Uuid::new_v4();
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let header = serde_json::to_value(Header::new(alg)).unwrap();
            assert!(refused(&forge(&header, &json_claims(room), alg, SECRET), room), "{alg:?}");
        }
    }

    #[test]
    fn a_public_key_algorithm_over_an_hmac_signature_is_refused() {
        // Key confusion: the header claims RS256/ES256/EdDSA while the signature is an HMAC.
        let room = Uuid::new_v4();
        for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
            let ticket = forge(&serde_json::json!({"alg": alg}), &json_claims(room), Algorithm::HS256, SECRET);
            assert!(refused(&ticket, room), "{alg}");
        }
    }

    #[test]
    fn a_ticket_signed_with_a_foreign_key_is_refused() {
        let room = Uuid::new_v4();
        let header = serde_json::json!({"alg":"HS256"});
        assert!(refused(
            &forge(&header, &json_claims(room), Algorithm::HS256, b"another-secret-another-secret-xx"),
            room
        ));
    }

    #[test]
    fn a_ticket_signed_with_an_empty_key_is_refused() {
        let room = Uuid::new_v4();
        assert!(refused(&forge(&serde_json::json!({"alg":"HS256"}), &json_claims(room), Algorithm::HS256, b""), room));
    }

    #[test]
    fn a_key_embedded_in_the_header_is_not_trusted() {
        // The attacker signs with its own key and offers it in `jwk`, or points at it with `jku`/`kid`.
        let room = Uuid::new_v4();
        let attacker = b"attacker-secret-attacker-secret!";
        let k = base64_free::encode_url(attacker);
        for header in [
            serde_json::json!({"alg":"HS256","jwk":{"kty":"oct","k":k}}),
            serde_json::json!({"alg":"HS256","jku":"https://evil.example/keys.json","kid":"evil"}),
            serde_json::json!({"alg":"HS256","kid":"../../../../dev/null"}),
        ] {
            assert!(refused(&forge(&header, &json_claims(room), Algorithm::HS256, attacker), room), "{header}");
        }
    }

    #[test]
    fn a_token_for_another_audience_signed_with_our_secret_is_refused() {
        // An `auth` token or any other JWT made with the same secret is not a ticket.
        let room = Uuid::new_v4();
        let header = serde_json::json!({"alg":"HS256"});
        let mut claims = json_claims(room);
        claims["aud"] = serde_json::json!("matchmaker");
        assert!(refused(&forge(&header, &claims, Algorithm::HS256, SECRET), room));
        claims.as_object_mut().unwrap().remove("aud");
        assert!(refused(&forge(&header, &claims, Algorithm::HS256, SECRET), room));
    }

    #[test]
    fn a_ticket_one_second_past_its_expiry_is_refused() {
        // No leeway: both ends are our servers.
        let room = Uuid::new_v4();
        let mut claims = json_claims(room);
        let now = unix_now();
        claims["iat"] = (now - 61).into();
        claims["nbf"] = (now - 61).into();
        claims["exp"] = (now - 1).into();
        assert!(refused(&forge(&serde_json::json!({"alg":"HS256"}), &claims, Algorithm::HS256, SECRET), room));
    }

    #[test]
    fn a_ticket_not_yet_valid_is_refused() {
        // Issued now but valid only from a few seconds ahead: a clock set forward elsewhere.
        let room = Uuid::new_v4();
        let mut claims = json_claims(room);
        claims["nbf"] = (unix_now() + 5).into();
        assert!(refused(&forge(&serde_json::json!({"alg":"HS256"}), &claims, Algorithm::HS256, SECRET), room));
    }

    #[test]
    fn a_ticket_without_exp_is_refused() {
        let room = Uuid::new_v4();
        let mut claims = json_claims(room);
        claims.as_object_mut().unwrap().remove("exp");
        assert!(refused(&forge(&serde_json::json!({"alg":"HS256"}), &claims, Algorithm::HS256, SECRET), room));
    }

    #[test]
    fn a_ticket_without_nbf_is_refused() {
        let room = Uuid::new_v4();
        let mut claims = json_claims(room);
        claims.as_object_mut().unwrap().remove("nbf");
        assert!(refused(&forge(&serde_json::json!({"alg":"HS256"}), &claims, Algorithm::HS256, SECRET), room));
    }

    #[test]
    fn an_exp_that_is_not_a_whole_number_of_seconds_is_refused() {
        // Strings, floats, negatives and numbers past u64 must not be read as "far in the future".
        let room = Uuid::new_v4();
        let far = unix_now() + 3_600;
        for exp in [
            serde_json::json!(far.to_string()),
            serde_json::json!(1e30),
            serde_json::json!(-1),
            serde_json::json!(null),
            serde_json::from_str::<serde_json::Value>("18446744073709551616").unwrap(),
        ] {
            let mut claims = json_claims(room);
            claims["exp"] = exp.clone();
            assert!(
                refused(&forge(&serde_json::json!({"alg":"HS256"}), &claims, Algorithm::HS256, SECRET), room),
                "exp {exp}"
            );
        }
    }

    /// A few lines of base64url so the test can forge headers without another dependency.
    mod base64_free {
        pub fn encode_url(bytes: &[u8]) -> String {
            const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
