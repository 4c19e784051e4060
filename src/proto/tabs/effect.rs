//! What a [`TabCoordinator`](super::TabCoordinator) asks the browser layer to do.

use super::message::Message;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::proto::json::Json;

/// Something the browser layer must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Post this message on the channel.
    Broadcast(Message),
    /// The chat became read-only in this tab (another tab owns it) or writable again.
    ReadOnlyChanged {
        /// The chat.
        chat_id: String,
        /// Whether this tab may not send on it now.
        read_only: bool,
    },
    /// Replace this tab's copy of the conversation.
    Messages {
        /// The chat.
        chat_id: String,
        /// The UI messages (a JSON array) as the other tab sent them.
        messages: Json,
        /// Their version (`None` from a JS tab).
        version: Option<u64>,
    },
    /// Move this tab's resume cursor forward.
    Session {
        /// The chat.
        chat_id: String,
        /// The new `Last-Event-ID`.
        last_event_id: String,
        /// The highest `.in` seq the agent had consumed (sent by our tabs only).
        consumed_input_seq: Option<u64>,
    },
    /// Another tab's claim beat ours after we made it (only a tab without the writer lock can):
    /// give the lock back once this tab's turn ends. A [`Effect::ReadOnlyChanged`] follows.
    LostClaim {
        /// The chat.
        chat_id: String,
    },
}
