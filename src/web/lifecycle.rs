//! Page lifecycle signals that mean "the connection may be dead, reconnect now":
//! `online`, `pageshow` from the back/forward cache, and `visibilitychange` back to visible
//! (after 30 s hidden the socket is likely gone; a shorter absence only cuts a backoff short).
//! Listeners are removed when the guard drops.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

use super::globals::{global_property, now};

/// Hidden at least this long, a tab's connection is treated as dead on return.
const FORCE_RECONNECT_AFTER_HIDDEN_MS: u64 = 30_000;

/// What a lifecycle signal asks of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Drop the current connection and open a new one from the cursor.
    Reconnect,
    /// Skip any backoff wait in progress.
    RetryNow,
}

type Listener = Closure<dyn FnMut(Event)>;

/// Registered wake listeners; removed on drop.
pub(crate) struct WakeListeners {
    registered: Vec<(EventTarget, &'static str, Listener)>,
}

impl WakeListeners {
    /// Listens on `window`/`document` where they exist; `on_wake` gets each signal.
    pub(crate) fn install(on_wake: Rc<dyn Fn(Wake)>) -> WakeListeners {
        let mut registered = Vec::new();
        let window = global_property("window").dyn_into::<EventTarget>().ok();
        let document = global_property("document").dyn_into::<EventTarget>().ok();
        if let Some(window) = window {
            let wake = on_wake.clone();
            let online: Listener = Closure::new(move |_: Event| wake(Wake::Reconnect));
            add(&mut registered, &window, "online", online);
            let wake = on_wake.clone();
            let pageshow: Listener = Closure::new(move |event: Event| {
                let persisted = Reflect::get(&event, &"persisted".into())
                    .map(|p| p.is_truthy())
                    .unwrap_or(false);
                if persisted {
                    wake(Wake::Reconnect);
                }
            });
            add(&mut registered, &window, "pageshow", pageshow);
        }
        if let Some(document) = document {
            let hidden_since = Rc::new(Cell::new(None::<u64>));
            let doc = document.clone();
            let wake = on_wake;
            let visibility: Listener = Closure::new(move |_: Event| {
                let hidden = Reflect::get(&doc, &"visibilityState".into())
                    .ok()
                    .and_then(|v| v.as_string())
                    .is_some_and(|v| v == "hidden");
                if hidden {
                    hidden_since.set(Some(now()));
                    return;
                }
                let away_ms = hidden_since.take().map_or(0, |t| now().saturating_sub(t));
                wake(if away_ms >= FORCE_RECONNECT_AFTER_HIDDEN_MS {
                    Wake::Reconnect
                } else {
                    Wake::RetryNow
                });
            });
            add(&mut registered, &document, "visibilitychange", visibility);
        }
        WakeListeners { registered }
    }
}

fn add(
    registered: &mut Vec<(EventTarget, &'static str, Listener)>,
    target: &EventTarget,
    name: &'static str,
    listener: Listener,
) {
    if target
        .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
        .is_ok()
    {
        registered.push((target.clone(), name, listener));
    }
}

impl Drop for WakeListeners {
    fn drop(&mut self) {
        for (target, name, listener) in self.registered.drain(..) {
            let _ =
                target.remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
    }
}
