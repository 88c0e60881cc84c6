//! The optional `auth` step: who the user behind a socket says they are.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use shared::{error::Rejected, ErrorCode};

use crate::config::AUTH_LEEWAY_SECS;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
}

/// Checks `auth` tokens against `AUTH_JWT_SECRET`, or takes them on trust when none is set.
pub enum Auth {
    /// No secret: any token is accepted; its `sub`, if readable, names the user.
    Open,
    /// HS256 tokens signed with the secret are required before `available`.
    Required {
        /// The HMAC key.
        key: DecodingKey,
        /// The checks a token must pass.
        validation: Box<Validation>,
    },
}

impl Auth {
    /// Auth for the configured secret, if any.
    pub fn new(secret: Option<&str>) -> Self {
        match secret {
            None => Auth::Open,
            Some(secret) => {
                let mut validation = Validation::new(Algorithm::HS256);
                validation.leeway = AUTH_LEEWAY_SECS;
                validation.validate_nbf = true;
                validation.set_required_spec_claims(&["sub"]);
                Auth::Required { key: DecodingKey::from_secret(secret.as_bytes()), validation: Box::new(validation) }
            }
        }
    }

    /// Whether `available` needs a successful `auth` first.
    pub fn is_required(&self) -> bool {
        matches!(self, Auth::Required { .. })
    }

    /// The user id for `token`, presented on the connection `client_id`.
    ///
    /// # Errors
    /// `unauthorized` when a secret is set and the token fails its checks.
    pub fn user_id(&self, token: &str, client_id: &str) -> Result<String, Rejected> {
        match self {
            Auth::Open => {
                let sub = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token).ok().and_then(|c| c.sub);
                Ok(sub.as_ref().and_then(subject).unwrap_or_else(|| client_id.to_owned()))
            }
            Auth::Required { key, validation } => {
                let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map_err(|err| Rejected::new(ErrorCode::Unauthorized, format!("token refused: {err}")))?
                    .claims;
                claims
                    .sub
                    .as_ref()
                    .and_then(subject)
                    .ok_or_else(|| Rejected::new(ErrorCode::Unauthorized, "token has no usable `sub` claim"))
            }
        }
    }
}

/// A `sub` claim as a user id: a non-empty string (numbers are taken as their text).
fn subject(sub: &serde_json::Value) -> Option<String> {
    match sub {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &str = "auth-secret-auth-secret-auth-secret";

    fn token(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn far_future() -> u64 {
        shared::ticket::unix_now() + 3600
    }

    #[test]
    fn without_a_secret_any_token_is_accepted() {
        let auth = Auth::Open;
        assert_eq!(auth.user_id("not a jwt", "client").unwrap(), "client");
        let t = token(serde_json::json!({"sub":"alice"}), "whatever");
        assert_eq!(auth.user_id(&t, "client").unwrap(), "alice");
    }

    #[test]
    fn with_a_secret_only_valid_tokens_pass() {
        let auth = Auth::new(Some(SECRET));
        let good = token(serde_json::json!({"sub":"bob","exp":far_future()}), SECRET);
        assert_eq!(auth.user_id(&good, "c").unwrap(), "bob");
        let forged = token(serde_json::json!({"sub":"bob","exp":far_future()}), "some-other-secret-some-other-secret");
        assert_eq!(auth.user_id(&forged, "c").unwrap_err().code, ErrorCode::Unauthorized);
        let expired = token(serde_json::json!({"sub":"bob","exp":1000}), SECRET);
        assert_eq!(auth.user_id(&expired, "c").unwrap_err().code, ErrorCode::Unauthorized);
        let no_sub = token(serde_json::json!({"exp":far_future()}), SECRET);
        assert_eq!(auth.user_id(&no_sub, "c").unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(auth.user_id("garbage", "c").unwrap_err().code, ErrorCode::Unauthorized);
    }
}
