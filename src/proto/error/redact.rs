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
    // No JWT starts before this: a candidate that failed scanned a run of token characters, and
    // any candidate starting inside that run would fail at the same place. (Without it, text
    // like "eyJeyJeyJ…" costs quadratic time, and server bodies reach here.)
    let mut no_jwt_before = 0;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let jwt = if pos < no_jwt_before {
            None
        } else {
            jwt_len(rest)
                .map_err(|scanned| no_jwt_before = pos + scanned)
                .ok()
        };
        let secret_len = jwt
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
/// `Ok((bytes to keep before the redaction = 0, match length))`, or `Err(scanned)`: how many
/// bytes were looked at before it failed (no JWT can start inside them).
fn jwt_len(bytes: &[u8]) -> Result<(usize, usize), usize> {
    let Some(rest) = bytes.strip_prefix(b"eyJ") else {
        return Err(0);
    };
    let header = run_len(rest, is_b64url);
    let scanned = 3 + header;
    let rest = rest
        .get(header..)
        .and_then(|r| r.strip_prefix(b"."))
        .filter(|_| header > 0)
        .ok_or(scanned)?;
    let payload = run_len(rest, is_b64url);
    let scanned = scanned + 1 + payload;
    let rest = rest
        .get(payload..)
        .and_then(|r| r.strip_prefix(b"."))
        .filter(|_| payload > 0)
        .ok_or(scanned)?;
    let signature = run_len(rest, is_b64url);
    Ok((0, 3 + header + 1 + payload + 1 + signature))
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
    fn a_long_run_of_jwt_starts_takes_linear_time_and_hides_what_follows() {
        // 600 KB of "eyJ": each start used to rescan the rest (about 10^11 byte checks).
        let mut text = "eyJ".repeat(200_000);
        text.push_str(" then Bearer abc and eyJa.eyJb.c and tr_pat_k");
        let out = redact_secrets(&text);
        assert!(out.ends_with(" then Bearer [redacted] and [redacted] and [redacted]"));
        // A failed candidate's payload run is skipped the same way, and a key inside a run
        // of token characters is still found.
        let text = format!("eyJa.{}tr_dev_x eyJh.eyJp.s", "eyJ".repeat(1000));
        assert_eq!(
            redact_secrets(&text),
            format!("eyJa.{}[redacted] [redacted]", "eyJ".repeat(1000))
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "eyJ alone, eyJabc.def without signature dot, tr_x, über";
        assert_eq!(redact_secrets(text), text);
    }
}
