//! Session URLs: `{base}/realtime/v1/sessions/{encodeURIComponent(chatId)}/{in/append|out}`
//! (client-protocol.mdx Steps 2 and 3).

#[allow(unused_imports)]
use crate::prelude::*;
/// Which end of a session to address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChannel {
    /// `POST …/in/append`: send a message, stop or action.
    InAppend,
    /// `GET …/out`: the SSE stream of records.
    Out,
}

impl SessionChannel {
    /// The path suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionChannel::InAppend => "in/append",
            SessionChannel::Out => "out",
        }
    }
}

/// Percent-encode exactly like JavaScript's `encodeURIComponent`: ASCII letters, digits and
/// `- _ . ! ~ * ' ( )` stay; every other UTF-8 byte becomes `%XX` (uppercase hex).
///
/// ```
/// use trigger_chat_wasm::proto::url::encode_uri_component;
/// assert_eq!(encode_uri_component("chat 1/ü?"), "chat%201%2F%C3%BC%3F");
/// ```
pub fn encode_uri_component(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
        {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// The URL of a session channel. Every trailing `/` of `base_url` is dropped (the JS client
/// drops only one, so `https://api.example.com//` gave `//realtime/…`).
///
/// ```
/// use trigger_chat_wasm::proto::url::{session_path, SessionChannel};
/// assert_eq!(
///     session_path("https://api.trigger.dev//", "chat/1", SessionChannel::Out),
///     "https://api.trigger.dev/realtime/v1/sessions/chat%2F1/out"
/// );
/// ```
pub fn session_path(base_url: &str, chat_id: &str, channel: SessionChannel) -> String {
    let base = base_url.trim_end_matches('/');
    let mut path = String::from(base);
    path.push_str("/realtime/v1/sessions/");
    path.push_str(&encode_uri_component(chat_id));
    path.push('/');
    path.push_str(channel.as_str());
    path
}
