//! Public access tokens, shaped like the ones Trigger.dev's SDK mints (`generateJWT` in
//! `@trigger.dev/core`): HS256 signed with the environment's secret key, issuer
//! `https://id.trigger.dev`, audience `https://api.trigger.dev`, claims `pub: true`, `sub` (the
//! environment) and `scopes` (`read:sessions:{chatId}`, `write:sessions:{chatId}`).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// `iss` of every token.
pub const ISSUER: &str = "https://id.trigger.dev";
/// `aud` of every token.
pub const AUDIENCE: &str = "https://api.trigger.dev";
/// `sub` of tokens minted by the emulator: the emulated environment's id.
pub const EMULATOR_ENV_ID: &str = "env_emulator_dev";

/// The claims this server writes and reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "pub", default)]
    pub public: bool,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused (both answer 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, wrong signature, issuer or audience.
    Invalid,
    /// Well-formed and signed, but `exp` has passed.
    Expired,
}

/// The two scopes of a session-scoped public access token.
pub fn session_scopes(chat_id: &str) -> Vec<String> {
    vec![
        format!("read:sessions:{chat_id}"),
        format!("write:sessions:{chat_id}"),
    ]
}

/// Signs a token valid for `ttl_seconds` (negative: already expired, for tests).
///
/// `exp` is rounded up to the next whole second, so the lifetime is at least `ttl_seconds`.
pub fn mint(secret: &str, sub: &str, scopes: Vec<String>, ttl_seconds: i64, now_ms: u64) -> String {
    let mut base = Map::new();
    base.insert("sub".into(), Value::String(sub.to_string()));
    base.insert("pub".into(), Value::Bool(true));
    mint_with(secret, base, scopes, ttl_seconds, now_ms)
}

/// Like [`mint`], on top of claims from elsewhere (real Trigger.dev's `/api/v1/auth/jwt/claims`).
pub fn mint_with(
    secret: &str,
    mut claims: Map<String, Value>,
    scopes: Vec<String>,
    ttl_seconds: i64,
    now_ms: u64,
) -> String {
    let now_ms = now_ms as i64;
    let exp_ms = now_ms.saturating_add(ttl_seconds.saturating_mul(1000));
    let exp = exp_ms.div_euclid(1000) + i64::from(exp_ms.rem_euclid(1000) != 0);
    claims.insert("scopes".into(), json!(scopes));
    claims.insert("iss".into(), json!(ISSUER));
    claims.insert("aud".into(), json!(AUDIENCE));
    claims.insert("iat".into(), json!(now_ms / 1000));
    claims.insert("exp".into(), json!(exp));
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// Checks signature, issuer and audience, then `exp` against `now_ms` (no leeway: tests use
/// lifetimes of a second or two).
pub fn verify(secret: &str, token: &str, now_ms: u64) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|_| TokenError::Invalid)?;
    if data.claims.exp.saturating_mul(1000) <= now_ms as i64 {
        return Err(TokenError::Expired);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_expires_on_time() {
        let t = mint("k", "env", session_scopes("c1"), 2, 10_500);
        let claims = verify("k", &t, 10_600).unwrap();
        assert_eq!(claims.scopes, vec!["read:sessions:c1", "write:sessions:c1"]);
        assert!(claims.public);
        assert_eq!(claims.exp, 13);
        assert!(verify("k", &t, 12_999).is_ok());
        assert_eq!(verify("k", &t, 13_000), Err(TokenError::Expired));
    }

    #[test]
    fn rejects_other_keys_and_garbage() {
        let t = mint("k", "env", vec![], 60, 0);
        assert_eq!(verify("other", &t, 1), Err(TokenError::Invalid));
        assert_eq!(verify("k", "not-a-jwt", 1), Err(TokenError::Invalid));
    }

    #[test]
    fn negative_ttl_is_already_expired() {
        let t = mint("k", "env", vec![], -1, 5_000);
        assert_eq!(verify("k", &t, 5_000), Err(TokenError::Expired));
    }
}
