//! `ChatTransportEvent`s, with the JS transport's type names and field names. The host adds
//! `timestamp` (it owns the clock of record) and `error` objects.

use super::action::push_u64;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::json::write_json_string;

/// One event as JSON object text, built field by field.
#[derive(Debug)]
pub(crate) struct EventBuilder(String);

impl EventBuilder {
    /// `{"type": kind, "chatId": chat_id`…
    pub(crate) fn new(kind: &str, chat_id: &str) -> EventBuilder {
        let mut text = String::from("{\"type\":");
        write_json_string(&mut text, kind);
        text.push_str(",\"chatId\":");
        write_json_string(&mut text, chat_id);
        EventBuilder(text)
    }

    fn key(&mut self, key: &str) {
        self.0.push(',');
        write_json_string(&mut self.0, key);
        self.0.push(':');
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_json_string(&mut self.0, value);
        self
    }

    pub(crate) fn str_opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    pub(crate) fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        push_u64(&mut self.0, value);
        self
    }

    pub(crate) fn num_opt(&mut self, key: &str, value: Option<u64>) -> &mut Self {
        if let Some(value) = value {
            self.num(key, value);
        }
        self
    }

    pub(crate) fn flag(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}
