//! Request header lists, merged the way HTTP means them: names compare case-insensitively.
//!
//! The JS transport merges plain objects, so a user's `authorization` (lower case) is
//! comma-joined with the real one on `.in` and replaces the token on `.out` (W20). Here each
//! later layer replaces a same-named header of an earlier one, and the transport's own headers
//! (`Authorization`, `Accept`, `X-Part-Id`, …) are applied last, so no option can override them.

#[allow(unused_imports)]
use crate::prelude::*;

/// Whether `token` can go out as `Authorization: Bearer {token}`: visible ASCII without spaces,
/// as JWTs and API keys are. Anything else from a server or a callback is not adopted: `fetch`
/// would refuse the header, and that failure would pass for the network's instead of an auth
/// problem, on every request of the chat.
pub fn is_bearer_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether `fetch` accepts a header: a name of HTTP token characters, and a value of
/// characters up to U+00FF without NUL, and without CR or LF once the spaces, tabs and line
/// breaks around it are trimmed, exactly as `fetch` trims them (not `str::trim`, which also
/// trims NBSP, VT and FF and would pass `"k\n\u{a0}"`). `fetch` throws on any other, and that
/// would pass for a network failure (retried, then `network`) instead of a bad option.
pub fn is_sendable(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value.chars().all(|c| c <= '\u{ff}' && c != '\0')
        && !has_inner_break(value)
}

/// Whether a CR or LF has other than spaces, tabs and line breaks on both sides of it.
fn has_inner_break(value: &str) -> bool {
    let (mut text, mut broken) = (false, false);
    for b in value.bytes() {
        match b {
            b'\r' | b'\n' => broken |= text,
            b' ' | b'\t' => {}
            _ if broken => return true,
            _ => text = true,
        }
    }
    false
}

/// An ordered list of `(name, value)` pairs with case-insensitive names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    /// An empty list.
    pub fn new() -> HeaderList {
        HeaderList(Vec::new())
    }

    /// Sets `name` to `value`, replacing any header of the same name in any letter case.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.set_string(name, value.into());
    }

    // (One body for every `value` type: the generic `set` is inlined as a conversion.)
    fn set_string(&mut self, name: &str, value: String) {
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            *slot = (name.to_owned(), value);
        } else {
            self.0.push((name.to_owned(), value));
        }
    }

    /// Removes `name`, in any letter case.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Sets every header of `other`, in order.
    pub fn extend(&mut self, other: &HeaderList) {
        for (name, value) in &other.0 {
            self.set(name, value.clone());
        }
    }

    /// The value of `name`, in any letter case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_replace_earlier_ones_whatever_the_case() {
        let mut user = HeaderList::new();
        user.set("authorization", "Bearer stolen");
        user.set("X-Custom", "1");
        let mut request = HeaderList::new();
        request.set("x-custom", "2");
        let mut all = HeaderList::new();
        all.extend(&user);
        all.extend(&request);
        all.set("Authorization", "Bearer real");
        assert_eq!(all.get("AUTHORIZATION"), Some("Bearer real"));
        assert_eq!(all.get("x-custom"), Some("2"));
        assert_eq!(all.len(), 2, "no duplicate of a header in another case");
    }
}
