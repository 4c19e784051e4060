//! The browser side: the only module that touches web-sys / js-sys. It performs the I/O that
//! the `proto` state machines ask for (fetch, body reads, timers, storage, lifecycle events,
//! tab messaging) and feeds the results back in.

pub(crate) mod abort;
pub(crate) mod errors;
pub(crate) mod globals;
pub(crate) mod http;
pub(crate) mod lifecycle;
pub(crate) mod runtime;
pub(crate) mod storage;
pub(crate) mod transport;

use wasm_bindgen::JsValue;

use crate::proto::Error;

/// A failure on the way to JavaScript: one of ours, or a value thrown by the app's own
/// callback (`accessToken`, `startSession`, `fetch`, persistence), passed through untouched so
/// the app sees its own error.
#[derive(Debug, Clone)]
pub(crate) enum Fail {
    /// A typed error of this crate.
    Error(Error),
    /// Whatever an app callback threw or rejected with.
    Thrown(JsValue),
}

impl From<Error> for Fail {
    fn from(error: Error) -> Fail {
        Fail::Error(error)
    }
}

impl Fail {
    /// The typed error, if this is one.
    pub(crate) fn as_error(&self) -> Option<&Error> {
        match self {
            Fail::Error(e) => Some(e),
            Fail::Thrown(_) => None,
        }
    }
}
