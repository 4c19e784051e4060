//! The transport's options, as the host hands them over (one JSON object), checked field by
//! field.

#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::headers::{is_sendable, HeaderList};
use crate::proto::json::Json;
use crate::proto::reconnect::DEFAULT_STALL_TIMEOUT_MS;
use crate::proto::session::PersistedSession;
use crate::proto::Error;

/// Default `Timeout-Seconds` for `.out` (the JS transport's `streamTimeoutSeconds` default).
pub const DEFAULT_STREAM_TIMEOUT_SECONDS: u64 = 120;

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Config {
    /// `task`: the chat agent's task id, given to `startSession`.
    pub task: String,
    /// `headers`: sent with every request, below the transport's own.
    pub headers: HeaderList,
    /// `Timeout-Seconds` for `.out`.
    pub stream_timeout_seconds: u64,
    /// No byte for this long → the connection is dead.
    pub stall_timeout_ms: u64,
    /// `multiTab` (off in watch mode, like the JS transport).
    pub multi_tab: bool,
    /// `multiTabSend: "queue"`: a send in a tab that does not own the chat waits for the owner's
    /// turn to end (in the writer lock's queue) instead of failing with `read_only_tab`.
    pub queue_sends: bool,
    /// `watch`: a resumed stream stays open across turn boundaries (a read-only viewer).
    pub watch: bool,
    /// `headStart`: the URL a chat's first turn is posted to (the app's `chat.headStart`
    /// route handler) while the chat has no session.
    pub head_start: Option<String>,
    /// This tab's id (the host makes it random).
    pub tab_id: String,
    /// The host has Web Locks.
    pub locks: bool,
    /// `accessToken` is a function.
    pub has_access_token: bool,
    /// `startSession` is a function.
    pub has_start_session: bool,
    /// `clientData`.
    pub client_data: Option<Json>,
    /// `sessions`: hydrated states, taking precedence over stored ones.
    pub sessions: Vec<(String, Result<PersistedSession, Error>)>,
}

fn invalid(name: &str, message: &str) -> Error {
    Error::InvalidOption {
        name: name.into(),
        message: message.into(),
    }
}

/// The JS `typeof` of option `name`, as the host reported it in `types`.
fn type_of<'a>(options: &'a Json, name: &str) -> &'a str {
    options
        .get("types")
        .and_then(|t| t.get(name))
        .and_then(Json::as_str)
        .unwrap_or("undefined")
}

fn optional_function(options: &Json, name: &str) -> Result<bool, Error> {
    match type_of(options, name) {
        "function" => Ok(true),
        "undefined" => Ok(false),
        _ => Err(invalid(name, "must be a function")),
    }
}

fn number_in(options: &Json, name: &str, default: u64, min: u64, max: u64) -> Result<u64, Error> {
    match options.get(name) {
        None | Some(Json::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| invalid(name, "is out of range")),
    }
}

/// A header value as `fetch` converts it: a string, or a number or boolean as `String()` writes
/// it (`{ "X-Version": 2 }` sends `2`; JSON writes finite numbers as `String()` does).
fn header_text(value: &Json) -> Option<&str> {
    match value {
        Json::String(v) | Json::Number(v) => Some(v),
        Json::Bool(true) => Some("true"),
        Json::Bool(false) => Some("false"),
        _ => None,
    }
}

/// A header record (`{ name: value }` or `[[name, value], …]`) as a list. A header `fetch`
/// would refuse is an error here (neither it nor its value named: a value may be a secret).
pub fn header_list(value: Option<&Json>, name: &str) -> Result<HeaderList, Error> {
    let mut list = HeaderList::new();
    let mut add = |k: &str, v: &str| {
        if is_sendable(k, v) {
            list.set(k, v);
            Ok(())
        } else {
            Err(invalid(
                name,
                "has a header name or value fetch cannot send",
            ))
        }
    };
    match value {
        None | Some(Json::Null) => {}
        Some(Json::Object(members)) => {
            for (key, value) in members {
                match value {
                    Json::Null => {}
                    v => match header_text(v) {
                        Some(v) => add(key, v)?,
                        None => return Err(invalid(name, "header values must be strings")),
                    },
                }
            }
        }
        Some(Json::Array(pairs)) => {
            for pair in pairs {
                match pair.as_array() {
                    Some([Json::String(k), v]) => match header_text(v) {
                        Some(v) => add(k, v)?,
                        None => return Err(invalid(name, "must be [name, value] pairs")),
                    },
                    _ => return Err(invalid(name, "must be [name, value] pairs")),
                }
            }
        }
        Some(_) => return Err(invalid(name, "must be an object of header values")),
    }
    Ok(list)
}

impl Config {
    /// Checks and reads the options object.
    pub fn parse(options: &Json) -> Result<Config, Error> {
        let task = options
            .get("task")
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("task", "is required (the chat agent's task id)"))?;
        let head_start = match options.get("headStart") {
            // Off for what the JS transport treats as off (any falsy value).
            None | Some(Json::Null) | Some(Json::Bool(false)) => None,
            Some(Json::String(url)) if url.is_empty() => None,
            Some(Json::String(url)) => Some(url.clone()),
            Some(_) => return Err(invalid("headStart", "must be a URL string")),
        };
        let watch = options.get("watch").and_then(Json::as_bool) == Some(true);
        let has_access_token = optional_function(options, "accessToken")?;
        let has_start_session = optional_function(options, "startSession")?;
        for name in ["fetch", "onEvent", "onSessionChange"] {
            optional_function(options, name)?;
        }
        if !has_access_token && !has_start_session {
            return Err(invalid(
                "accessToken",
                "accessToken or startSession is required",
            ));
        }
        match type_of(options, "baseURL") {
            "undefined" | "string" | "function" => {}
            _ => return Err(invalid("baseURL", "must be a string or a function")),
        }
        let queue_sends = match options.get("multiTabSend") {
            None | Some(Json::Null) => false,
            Some(v) if v.as_str() == Some("reject") => false,
            Some(v) if v.as_str() == Some("queue") => true,
            Some(_) => return Err(invalid("multiTabSend", "must be \"reject\" or \"queue\"")),
        };
        let mut sessions = Vec::new();
        match options.get("sessions") {
            None | Some(Json::Null) => {}
            // `null` is "no session" (what `onSessionChange` reports for a removed chat, so an
            // app saving those hands them back); an unreadable entry is kept as its error, for
            // the chat to start empty with a `storage-error` rather than every chat failing.
            Some(Json::Object(members)) => {
                for (chat_id, state) in members {
                    if !matches!(state, Json::Null) {
                        sessions.push((chat_id.clone(), PersistedSession::from_json(state)));
                    }
                }
            }
            Some(_) => return Err(invalid("sessions", "must be an object keyed by chat id")),
        }
        Ok(Config {
            task: task.into(),
            headers: header_list(options.get("headers"), "headers")?,
            stream_timeout_seconds: number_in(
                options,
                "streamTimeoutSeconds",
                DEFAULT_STREAM_TIMEOUT_SECONDS,
                1,
                600,
            )?,
            stall_timeout_ms: number_in(
                options,
                "stallTimeoutMs",
                DEFAULT_STALL_TIMEOUT_MS,
                1_000,
                3_600_000,
            )?,
            multi_tab: !watch && options.get("multiTab").and_then(Json::as_bool) == Some(true),
            queue_sends,
            watch,
            head_start,
            tab_id: options
                .get("tabId")
                .and_then(Json::as_str)
                .unwrap_or("tab")
                .into(),
            locks: options.get("locks").and_then(Json::as_bool) == Some(true),
            has_access_token,
            has_start_session,
            client_data: options.get("clientData").filter(|v| !v.is_null()).cloned(),
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(&Json::parse(text).unwrap())
    }

    fn field_of(error: Error) -> String {
        match error {
            Error::InvalidOption { name, .. } => name,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_the_options_and_their_defaults() {
        let config = parse(
            r#"{"task":"chat","types":{"startSession":"function"},"headers":{"X-A":"1"},"clientData":{"u":1}}"#,
        )
        .unwrap();
        assert_eq!(config.task, "chat");
        assert!(config.has_start_session && !config.has_access_token);
        assert_eq!(config.headers.get("x-a"), Some("1"));
        // Latin-1 and surrounding spaces are sendable (fetch trims the spaces), and so is a
        // line break at the end (a key read from a file).
        assert!(is_sendable("x-key", "abc\r\n"));
        assert!(!is_sendable("x-key", "a\nb"));
        let latin1 = parse(
            r#"{"task":"chat","types":{"accessToken":"function"},"headers":{"X-Name":" Zoë "}}"#,
        )
        .unwrap();
        assert_eq!(latin1.headers.get("x-name"), Some(" Zoë "));
        // Numbers and booleans go out as `fetch` writes them; other values are refused.
        let json = |text: &str| Json::parse(text).unwrap();
        let list =
            header_list(Some(&json(r#"{"X-V":2,"X-F":1.5,"X-B":true}"#)), "headers").unwrap();
        assert_eq!(
            (list.get("x-v"), list.get("x-f"), list.get("x-b")),
            (Some("2"), Some("1.5"), Some("true"))
        );
        let pairs = header_list(Some(&json(r#"[["X-V",2],["X-B",false]]"#)), "headers").unwrap();
        assert_eq!(
            (pairs.get("x-v"), pairs.get("x-b")),
            (Some("2"), Some("false"))
        );
        assert!(header_list(Some(&json(r#"{"X-O":{}}"#)), "headers").is_err());
        assert!(header_list(Some(&json(r#"[["X-O",[]]]"#)), "headers").is_err());
        assert_eq!(config.stream_timeout_seconds, 120);
        assert_eq!(config.stall_timeout_ms, DEFAULT_STALL_TIMEOUT_MS);
        assert!(config.client_data.is_some());
        assert!(!config.watch);
        assert_eq!(config.head_start, None);
        assert!(!config.queue_sends);
        let config = parse(
            r#"{"task":"t","types":{"accessToken":"function"},"multiTab":true,"multiTabSend":"queue"}"#,
        )
        .unwrap();
        assert!(config.multi_tab && config.queue_sends);
        let config =
            parse(r#"{"task":"t","types":{"accessToken":"function"},"headStart":"/api/chat"}"#)
                .unwrap();
        assert_eq!(config.head_start.as_deref(), Some("/api/chat"));
        // An empty URL is off, as in the JS transport (`if (this.headStart)`).
        let config =
            parse(r#"{"task":"t","types":{"accessToken":"function"},"headStart":""}"#).unwrap();
        assert_eq!(config.head_start, None);
    }

    #[test]
    fn watch_mode_turns_off_tab_coordination() {
        let config = parse(
            r#"{"task":"t","types":{"accessToken":"function"},"watch":true,"multiTab":true}"#,
        )
        .unwrap();
        assert!(config.watch && !config.multi_tab);
    }

    #[test]
    fn names_the_bad_field() {
        for (text, field) in [
            (r#"{}"#, "task"),
            (r#"{"task":"t"}"#, "accessToken"),
            (
                r#"{"task":"t","types":{"accessToken":"string"}}"#,
                "accessToken",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"streamTimeoutSeconds":0}"#,
                "streamTimeoutSeconds",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function","onEvent":"object"}}"#,
                "onEvent",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"headers":{"a":[1]}}"#,
                "headers",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"sessions":[]}"#,
                "sessions",
            ),
            // What fetch would refuse: a value past U+00FF, a line break, a name not a token.
            (
                r#"{"task":"t","types":{"accessToken":"function"},"headers":{"x-city":"東京"}}"#,
                "headers",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"headers":[["x-a","1\r\nx-b: 2"]]}"#,
                "headers",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"headers":{"x a":"1"}}"#,
                "headers",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"headStart":true}"#,
                "headStart",
            ),
            (
                r#"{"task":"t","types":{"accessToken":"function"},"multiTabSend":"wait"}"#,
                "multiTabSend",
            ),
        ] {
            assert_eq!(field_of(parse(text).unwrap_err()), field, "{text}");
        }
    }
}
