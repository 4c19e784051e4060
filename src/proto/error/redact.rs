//! Credential redaction for error messages: server bodies and platform messages can echo a
//! token back, and error messages end up in logs and UIs.

#[allow(unused_imports)]
use crate::prelude::*;
/// Replace anything that looks like a credential with `[redacted]`:
/// JWTs (`eyJ<b64url>.<b64url>.<b64url>?`), the token after `Bearer `, and Trigger.dev secret
/// keys (`tr_dev_…`, `tr_prod_…`, `tr_stg_…`, `tr_pat_…`, `tr_preview_…`).
///
/// ```
/// use trigger_chat_wasm::proto::error::redact_secrets;
/// assert_eq!(redact_secrets("token eyJhbGciOi.eyJzdWIi.c2ln expired"), "token [redacted] expired");
/// ```
pub fn redact_secrets(text: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let secret_len = jwt_len(rest)
            .or_else(|| bearer_token_len(rest))
            .or_else(|| secret_key_len(rest));
        match secret_len {
            Some((keep, len)) => {
                // Everything matched here is ASCII, so these are char boundaries.
                out.push_str(text.get(copied_to..pos + keep).unwrap_or_default());
                out.push_str(REDACTED);
                pos += len;
                copied_to = pos;
            }
            None => pos += 1,
        }
    }
    out.push_str(text.get(copied_to..).unwrap_or_default());
    out
}

fn is_b64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn run_len(bytes: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|&&b| pred(b)).count()
}

/// `eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*` at the start of `bytes`:
/// returns (bytes to keep before the redaction = 0, match length).
fn jwt_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let rest = bytes.strip_prefix(b"eyJ")?;
    let header = run_len(rest, is_b64url);
    let rest = rest.get(header..)?.strip_prefix(b".")?;
    let payload = run_len(rest, is_b64url);
    if header == 0 || payload == 0 {
        return None;
    }
    let rest = rest.get(payload..)?.strip_prefix(b".")?;
    let signature = run_len(rest, is_b64url);
    Some((0, 3 + header + 1 + payload + 1 + signature))
}

/// `Bearer <token>`: keeps `Bearer `, redacts the token.
fn bearer_token_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let prefix = b"bearer ";
    let head = bytes.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = bytes.get(prefix.len()..)?;
    let token = run_len(rest, |b| {
        is_b64url(b) || matches!(b, b'.' | b'~' | b'+' | b'/' | b'=')
    });
    (token > 0).then_some((prefix.len(), prefix.len() + token))
}

/// Trigger.dev secret keys and personal access tokens.
fn secret_key_len(bytes: &[u8]) -> Option<(usize, usize)> {
    const PREFIXES: [&[u8]; 5] = [
        b"tr_dev_",
        b"tr_prod_",
        b"tr_stg_",
        b"tr_pat_",
        b"tr_preview_",
    ];
    let prefix = PREFIXES.iter().find(|p| bytes.starts_with(p))?;
    let rest = bytes.get(prefix.len()..)?;
    let key = run_len(rest, |b| b.is_ascii_alphanumeric() || b == b'_');
    (key > 0).then_some((0, prefix.len() + key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_jwt_bearer_and_secret_keys() {
        let text = "bad eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abc_DEF-1 and Bearer abc.def/ghi= and tr_dev_Xy12";
        let out = redact_secrets(text);
        assert_eq!(out, "bad [redacted] and Bearer [redacted] and [redacted]");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "eyJ alone, eyJabc.def without signature dot, tr_x, über";
        assert_eq!(redact_secrets(text), text);
    }
}
