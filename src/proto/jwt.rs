//! When a token expires: a JWT's `exp` claim, read without verifying the signature (the server
//! does that), so a token about to expire is refreshed before a request instead of after its
//! 401 (see `driver::auth`).

#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::json::Json;

/// Longest payload segment decoded: a session token's is a few hundred bytes.
const MAX_PAYLOAD: usize = 4096;

/// When `token` expires, in ms since the epoch: the `exp` claim (seconds) of a JWT that has one;
/// `None` for anything else (an opaque token is used until the server refuses it).
///
/// ```
/// use trigger_chat_wasm::proto::jwt::expires_at_ms;
/// // {"alg":"HS256"} . {"sub":"x","exp":1700000000} . signature
/// let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
/// assert_eq!(expires_at_ms(token), Some(1_700_000_000_000));
/// assert_eq!(expires_at_ms("tr_pat_opaque"), None);
/// ```
pub fn expires_at_ms(token: &str) -> Option<u64> {
    // header.payload.signature
    let bytes = token.as_bytes();
    let first = bytes.iter().position(|&b| b == b'.')?;
    let rest = bytes.get(first + 1..)?;
    let len = rest.iter().position(|&b| b == b'.')?;
    let payload = rest.get(..len)?;
    if len > MAX_PAYLOAD || rest.get(len + 1..)?.contains(&b'.') {
        return None;
    }
    let bytes = base64url_decode(payload)?;
    let claims = Json::parse(core::str::from_utf8(&bytes).ok()?).ok()?;
    // Whole seconds (a fraction is dropped): no float parsing, which would add ~15 KB of wasm.
    // Negative or exponent forms are not a time this reads.
    let Json::Number(raw) = claims.get("exp")? else {
        return None;
    };
    let mut secs: u64 = 0;
    let mut fraction = false;
    for b in raw.bytes() {
        match b {
            b'.' if !fraction => fraction = true,
            b'0'..=b'9' if fraction => {}
            b'0'..=b'9' => secs = secs.saturating_mul(10).saturating_add(u64::from(b - b'0')),
            _ => return None,
        }
    }
    Some(secs.saturating_mul(1000))
}

/// Decodes base64url (standard base64's `+` and `/` are accepted too, and `=` padding is
/// skipped); `None` on any other character.
fn base64url_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &c in text {
        let value = match c {
            b'=' => continue,
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
