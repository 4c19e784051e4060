//! Who is calling: the environment's secret key (server-side callers) or a public access token
//! (browsers). client-protocol.mdx "Authentication": `.in` needs `write:sessions:{id}`, `.out`
//! needs `read:sessions:{id}`; a token minted for the externalId also covers the `session_…` form.

use std::sync::Arc;

use axum::http::{header, HeaderMap};

use crate::error::ApiError;
use crate::jwt::{self, Claims, TokenError};
use crate::session::Session;
use crate::store::Store;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `Authorization: Bearer <secret key>`: may do anything in the environment.
    SecretKey,
    /// A verified public access token.
    Token(Claims),
}

/// What a caller wants to do with a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// 401 unless the request carries the secret key or a valid, unexpired token.
pub fn authenticate(headers: &HeaderMap, secret: &str, now_ms: u64) -> Result<Caller, ApiError> {
    let token = bearer(headers)
        .ok_or_else(|| ApiError::unauthorized("Missing or malformed Authorization header"))?;
    if token == secret {
        return Ok(Caller::SecretKey);
    }
    match jwt::verify(secret, token, now_ms) {
        Ok(claims) => Ok(Caller::Token(claims)),
        Err(TokenError::Expired) => Err(ApiError::unauthorized("Public access token has expired")
            .with("code", serde_json::json!("token_expired"))),
        Err(TokenError::Invalid) => Err(ApiError::unauthorized("Invalid public access token")),
    }
}

/// 401 unless the request carries the secret key itself.
pub fn require_secret_key(headers: &HeaderMap, secret: &str, now_ms: u64) -> Result<(), ApiError> {
    match authenticate(headers, secret, now_ms)? {
        Caller::SecretKey => Ok(()),
        Caller::Token(_) => Err(ApiError::forbidden(
            "This endpoint needs the environment's secret API key",
        )),
    }
}

impl Caller {
    /// Whether the caller may `access` a session known by any of `names` (its externalId and
    /// its `session_…` id). `admin:` scopes imply read and write; the bare `read:sessions`
    /// super-scope covers every session.
    pub fn may(&self, access: Access, names: &[&str]) -> bool {
        let claims = match self {
            Caller::SecretKey => return true,
            Caller::Token(claims) => claims,
        };
        let verbs: &[Access] = match access {
            Access::Read => &[Access::Read, Access::Admin],
            Access::Write => &[Access::Write, Access::Admin],
            Access::Admin => &[Access::Admin],
        };
        claims.scopes.iter().any(|scope| {
            verbs.iter().any(|verb| {
                let prefix = format!("{}:sessions", verb.verb());
                match scope.strip_prefix(&prefix) {
                    Some("") => true,
                    Some(rest) => rest.strip_prefix(':').is_some_and(|id| names.contains(&id)),
                    None => false,
                }
            })
        })
    }
}

/// Resolves `name` (externalId or `session_…`) to a session the caller may `access`.
///
/// A known session the token does not cover is 403; an unknown one is 404 when the caller could
/// have accessed that name and 403 otherwise (existence is not revealed to other chats' tokens).
pub fn authorize(
    store: &Store,
    caller: &Caller,
    name: &str,
    access: Access,
) -> Result<Arc<Session>, ApiError> {
    let denied = || {
        ApiError::forbidden(format!(
            "Token does not grant {}:sessions:{name}",
            access.verb()
        ))
    };
    match store.find(name) {
        Some(session) if caller.may(access, &session.names()) => Ok(session),
        Some(_) => Err(denied()),
        None if caller.may(access, &[name]) => {
            Err(ApiError::not_found(format!("Session {name} not found")))
        }
        None => Err(denied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scopes: &[&str]) -> Caller {
        Caller::Token(Claims {
            sub: "env".into(),
            public: true,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            iss: jwt::ISSUER.into(),
            aud: jwt::AUDIENCE.into(),
            iat: 0,
            exp: i64::MAX / 2000,
        })
    }

    #[test]
    fn scopes_cover_both_url_forms_and_nothing_else() {
        let c = token(&["read:sessions:chat-1"]);
        assert!(c.may(Access::Read, &["chat-1", "session_x"]));
        assert!(!c.may(Access::Write, &["chat-1", "session_x"]));
        assert!(!c.may(Access::Read, &["chat-10", "session_y"]));
        assert!(!c.may(Access::Read, &["chat-"]));
        assert!(token(&["read:sessions"]).may(Access::Read, &["any"]));
        assert!(token(&["admin:sessions:s"]).may(Access::Write, &["s"]));
        assert!(Caller::SecretKey.may(Access::Admin, &["whatever"]));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
