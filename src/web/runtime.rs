//! Small async building blocks on the browser's event loop: a cancellable sleep, a race of two
//! futures, and a wake-up signal. (No executor of our own: `wasm-bindgen-futures` drives futures
//! on the microtask queue; timers are `setTimeout`.)

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use super::globals::{clear_timeout, set_timeout};

/// Resolves after `ms` milliseconds. Dropping it clears the timer.
pub(crate) struct Sleep {
    future: JsFuture,
    timer: JsValue,
}

/// A [`Sleep`] of `ms` milliseconds.
pub(crate) fn sleep(ms: u64) -> Sleep {
    let ms = ms.min(i32::MAX as u64) as i32;
    let mut timer = JsValue::UNDEFINED;
    let promise = Promise::new(&mut |resolve, _reject| {
        timer = set_timeout(&resolve, ms);
    });
    Sleep {
        future: JsFuture::from(promise),
        timer,
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.future).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        clear_timeout(&self.timer);
    }
}

/// Which of two raced futures finished first.
pub(crate) enum Either<A, B> {
    /// The first one.
    Left(A),
    /// The second one.
    Right(B),
}

/// Polls both futures; returns the output of the first to finish and drops the other.
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// A level-triggered wake-up signal shared by clones: [`Notify::notify`] completes every
/// [`Notify::notified`] future created before it.
#[derive(Clone, Default)]
pub(crate) struct Notify(Rc<RefCell<NotifyState>>);

#[derive(Default)]
struct NotifyState {
    generation: u64,
    wakers: Vec<Waker>,
}

impl Notify {
    /// Wakes every waiter.
    pub(crate) fn notify(&self) {
        let wakers = match self.0.try_borrow_mut() {
            Ok(mut state) => {
                state.generation = state.generation.wrapping_add(1);
                std::mem::take(&mut state.wakers)
            }
            Err(_) => return,
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// A future that completes at the next [`Notify::notify`].
    pub(crate) fn notified(&self) -> Notified {
        let generation = self.0.try_borrow().map(|s| s.generation).unwrap_or(0);
        Notified {
            notify: self.clone(),
            generation,
        }
    }
}

/// See [`Notify::notified`].
pub(crate) struct Notified {
    notify: Notify,
    generation: u64,
}

impl Future for Notified {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Ok(mut state) = self.notify.0.try_borrow_mut() else {
            return Poll::Pending;
        };
        if state.generation != self.generation {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
