//! Waiting on an app's `AbortSignal` without leaking its listener.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::{Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

/// Resolves when the signal aborts (at once if it already has). Dropping it removes the
/// listener.
pub(crate) struct Aborted {
    signal: AbortSignal,
    listener: Option<Function>,
    future: JsFuture,
}

/// An [`Aborted`] future for `signal`.
pub(crate) fn aborted(signal: &AbortSignal) -> Aborted {
    let mut listener = None;
    let already = signal.aborted();
    let promise = Promise::new(&mut |resolve, _reject| {
        if already {
            let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
        } else if signal
            .add_event_listener_with_callback("abort", resolve.unchecked_ref())
            .is_ok()
        {
            listener = Some(resolve);
        }
    });
    Aborted {
        signal: signal.clone(),
        listener,
        future: JsFuture::from(promise),
    }
}

impl Future for Aborted {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.future).poll(cx).map(|_| ())
    }
}

impl Drop for Aborted {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self
                .signal
                .remove_event_listener_with_callback("abort", &listener);
        }
    }
}

/// Calls a function when the signal aborts; dropping the guard removes the listener.
pub(crate) struct OnAbort {
    signal: AbortSignal,
    closure: wasm_bindgen::closure::Closure<dyn FnMut()>,
}

/// Registers `f` for `signal`'s `abort` event.
pub(crate) fn on_abort(signal: &AbortSignal, f: impl FnMut() + 'static) -> OnAbort {
    let closure = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(f);
    let _ = signal.add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
    OnAbort {
        signal: signal.clone(),
        closure,
    }
}

impl Drop for OnAbort {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.closure.as_ref().unchecked_ref());
    }
}
