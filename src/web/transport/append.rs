//! One reliable `.in/append`: the same body and `X-Part-Id` on every attempt, with the token
//! refresh, session repair, rate-limit waits and backoff that `proto::append` decides.

use std::rc::Rc;

use web_sys::AbortSignal;

use super::{Chat, Event, Transport};
use crate::proto::append::{AppendPolicy, NextStep, APPEND_TIMEOUT_MS};
use crate::proto::headers::HeaderList;
use crate::proto::retry::parse_rate_limit_reset;
use crate::proto::url::SessionChannel;
use crate::proto::wire::AppendResponse;
use crate::proto::Error;
use crate::web::abort::aborted;
use crate::web::globals::{now, random};
use crate::web::http::{fetch, AbortOnDrop, Endpoint, Request, Response};
use crate::web::runtime::{race, sleep, Either};
use crate::web::Fail;

/// What an append is for: the `source` of its `message-sent` / `message-send-failed` events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    SubmitMessage,
    RegenerateMessage,
    Steer,
    Action,
    Stop,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::SubmitMessage => "submit-message",
            Source::RegenerateMessage => "regenerate-message",
            Source::Steer => "steer",
            Source::Action => "action",
            Source::Stop => "stop",
        }
    }
}

/// One logical append.
pub(crate) struct Append<'a> {
    pub source: Source,
    pub body: &'a str,
    pub part_id: &'a str,
    pub message_id: Option<&'a str>,
    /// Per-request headers (`ChatRequestOptions.headers`), layered over the `headers` option.
    pub headers: Option<&'a HeaderList>,
    /// Aborting it cancels the attempt in flight and any wait.
    pub signal: Option<&'a AbortSignal>,
}

impl Transport {
    /// Appends with retries and reports `message-sent` / `message-send-failed`. A closed
    /// session (409 `session_closed`) marks the chat closed.
    pub(crate) async fn append(
        &self,
        chat: &Rc<Chat>,
        append: Append<'_>,
    ) -> Result<AppendResponse, Fail> {
        let started_ms = now();
        let result = self.append_with_retries(chat, &append).await;
        let duration_ms = now().saturating_sub(started_ms) as f64;
        let event = match &result {
            Ok(_) => Event::new("message-sent", &chat.id),
            Err(fail) => Event::new("message-send-failed", &chat.id).error(fail),
        };
        self.emit(
            event
                .str("source", Some(append.source.as_str()))
                .num("durationMs", Some(duration_ms))
                .str("messageId", append.message_id)
                .str("partId", Some(append.part_id))
                .num("bodyBytes", Some(append.body.len() as f64)),
        );
        if let Ok(response) = &result {
            if response.pending_version {
                self.emit(Event::new("run-pending-version", &chat.id).str("source", Some("send")));
            }
        }
        if let Err(Fail::Error(Error::SessionClosed { closed_reason })) = &result {
            self.close_chat(chat, closed_reason.clone(), "append");
        }
        result
    }

    async fn append_with_retries(
        &self,
        chat: &Rc<Chat>,
        append: &Append<'_>,
    ) -> Result<AppendResponse, Fail> {
        let closed = chat.state.borrow().closed;
        if closed {
            let reason = chat.state.borrow().closed_reason.clone();
            return Err(Error::SessionClosed {
                closed_reason: reason,
            }
            .into());
        }
        let mut policy = AppendPolicy::new();
        loop {
            let token = self.ensure_token(chat).await?;
            let error = match self.append_once(chat, append, &token).await {
                Ok(response) => return Ok(response),
                Err(Fail::Error(error)) => error,
                Err(thrown) => return Err(thrown),
            };
            let can_recreate = self.0.callbacks.borrow().start_session.is_some();
            match policy.after_failure(error, can_recreate, now(), random()) {
                NextStep::RefreshToken => {
                    self.refresh_token(chat, Some(&token)).await?;
                }
                NextStep::RecreateSession => {
                    self.start_session(chat, true).await?;
                }
                NextStep::RetryAfter { delay_ms } => {
                    if let Some(signal) = append.signal {
                        if let Either::Right(()) = race(sleep(delay_ms), aborted(signal)).await {
                            return Err(Error::Aborted.into());
                        }
                    } else {
                        sleep(delay_ms).await;
                    }
                }
                NextStep::GiveUp(error) => return Err(error.into()),
            }
        }
    }

    async fn append_once(
        &self,
        chat: &Chat,
        append: &Append<'_>,
        token: &str,
    ) -> Result<AppendResponse, Fail> {
        let mut headers = self.0.config.headers.clone();
        if let Some(extra) = append.headers {
            headers.extend(extra);
        }
        headers.set("Content-Type", "application/json");
        headers.set("Authorization", format!("Bearer {token}"));
        headers.set("x-trigger-source", "sdk");
        headers.set("X-Part-Id", append.part_id);
        let request = Request {
            method: "POST",
            url: self.url(&chat.id, SessionChannel::InAppend),
            headers,
            body: Some(append.body),
            endpoint: Endpoint::In,
            chat_id: &chat.id,
        };
        let abort = AbortOnDrop::new();
        let signal = abort.as_ref().map(AbortOnDrop::signal);
        let fetch_override = self.fetch_override();
        let attempt = async {
            let response = fetch(fetch_override.as_ref(), &request, signal.as_ref()).await?;
            Ok::<_, Fail>((response.text().await, response))
        };
        let timed = race(attempt, sleep(APPEND_TIMEOUT_MS));
        let outcome = match append.signal {
            Some(user) => match race(timed, aborted(user)).await {
                Either::Left(outcome) => outcome,
                Either::Right(()) => return Err(Error::Aborted.into()),
            },
            None => timed.await,
        };
        let (text, response) = match outcome {
            Either::Left(result) => result?,
            Either::Right(()) => {
                return Err(Error::Network {
                    message: "the append timed out".into(),
                }
                .into())
            }
        };
        if (200..300).contains(&response.status) {
            return Ok(AppendResponse::parse(&text));
        }
        Err(http_error(&response, &text).into())
    }
}

/// A non-2xx response as an error, with the rate-limit reset from its headers.
pub(crate) fn http_error(response: &Response, body: &str) -> Error {
    let mut error = Error::from_http_status(response.status, body);
    if let Error::RateLimited { reset_epoch_ms } = &mut error {
        *reset_epoch_ms = response
            .header("x-ratelimit-reset")
            .as_deref()
            .and_then(parse_rate_limit_reset);
    }
    error
}
