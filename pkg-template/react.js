"use client";
// trigger-chat-wasm/react — React hooks around TriggerChatTransport: the same names as
// `@trigger.dev/sdk/chat/react`, without its lifecycle and multi-tab weaknesses (see react.d.ts
// for the contracts). Safe to import during server-side rendering: nothing here runs at import
// time, and nothing touches a browser API outside effects and event callbacks.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { TriggerChatTransport } from "./index.js";
import { createSubAgentMessages } from "./subagents.js";

// Options kept live without recreating the transport: callbacks are passed to the transport as
// stable wrappers that call the latest value; the setter runs only when one appears or
// disappears (the transport treats a missing callback differently from a present one).
const LIVE_CALLBACKS = [
  ["onSessionChange", "setOnSessionChange"],
  ["onEvent", "setOnEvent"],
  ["accessToken", "setAccessToken"],
  ["startSession", "setStartSession"],
  ["fetch", "setFetch"],
];

// See transport.js: while set, an aborted stream detaches instead of stopping the agent.
const DETACH_ABORTS = Symbol.for("trigger-chat-wasm.detachAborts");
const LEFT_SENDS = Symbol.for("trigger-chat-wasm.leftSends");
// Layout effects do nothing during server rendering (and React 18 warns about them there).
const useIsomorphicLayoutEffect = typeof window === "undefined" ? useEffect : useLayoutEffect;

// A ref holding `value` as of the render React last committed (set in a layout effect, before
// any passive effect of that commit): a render that is never committed, such as a transition to
// another chat that is abandoned or still suspended, changes nothing the callbacks read.
function useCommitted(value) {
  const ref = useRef(value);
  useIsomorphicLayoutEffect(() => {
    ref.current = value;
  });
  return ref;
}

function clientDataKey(value) {
  if (value === undefined) return undefined;
  try {
    return JSON.stringify(value);
  } catch {
    return value; // Not serializable: the transport reports it; compare by identity.
  }
}

function createEntry(latest) {
  const options = latest.current;
  const wrappers = {};
  const present = {};
  const initial = { ...options };
  for (const [name] of LIVE_CALLBACKS) {
    // Called as a plain function, as the class calls it: a method call would make the options
    // object its `this` (`fetch: window.fetch` then throws "Illegal invocation").
    wrappers[name] = (...args) => {
      const fn = latest.current[name];
      return fn(...args);
    };
    present[name] = typeof options[name] === "function";
    if (present[name]) initial[name] = wrappers[name];
  }
  return {
    transport: new TriggerChatTransport(initial),
    wrappers,
    present,
    clientData: clientDataKey(options.clientData),
    disposeTimer: undefined,
  };
}

/**
 * One TriggerChatTransport per component instance, disposed on a real unmount only.
 * Live options are applied when React commits the render that changed them (in a layout effect),
 * so a send right after it (an event handler, a layout effect of this component) uses the new
 * values, and a render that is never committed (an abandoned transition) changes nothing.
 */
export function useTriggerChatTransport(options) {
  const latest = useRef(options);
  const entryRef = useRef(null);
  // Constructing during render is cheap and holds no browser resources until first use, so the
  // instance React StrictMode renders and throws away costs nothing.
  if (entryRef.current === null) entryRef.current = createEntry(latest);
  const entry = entryRef.current;

  useIsomorphicLayoutEffect(() => {
    latest.current = options;
    for (const [name, setter] of LIVE_CALLBACKS) {
      const present = typeof options[name] === "function";
      if (present !== entry.present[name]) {
        entry.present[name] = present;
        entry.transport[setter](present ? entry.wrappers[name] : undefined);
      }
    }
    const clientData = clientDataKey(options.clientData);
    if (clientData !== entry.clientData) {
      entry.clientData = clientData;
      entry.transport.setClientData(options.clientData);
    }
  });

  useEffect(() => {
    // StrictMode runs cleanup + effect again right away: the deferred dispose is cancelled here.
    // A component shown again after a real dispose (an <Activity> that was hidden, Next.js's
    // cached routes) keeps its transport: dispose() is undone by the next call, and useChat,
    // which holds this transport, resumes its reply through it in this same commit.
    clearTimeout(entry.disposeTimer);
    entry.disposeTimer = undefined;
    entry.disposeAfter = undefined;
    return () => {
      entry.disposeTimer = setTimeout(() => {
        entry.disposeTimer = undefined;
        // A message on its way when the component left (waiting for the network, or in the
        // writer lock's queue behind another tab) is still sent: dispose() would give it up,
        // so it waits for those sends, unless the component comes back first.
        const left = entry.transport[LEFT_SENDS]?.();
        if (!left) return entry.transport.dispose();
        entry.disposeAfter = left;
        left.then(() => {
          if (entry.disposeAfter !== left) return;
          entry.disposeAfter = undefined;
          entry.transport.dispose();
        });
      }, 0);
    };
  }, [entry]);

  // On unmount, useChat calls `chat.stop()`, which aborts the reply's signal. That is a user
  // leaving the chat (navigating away), not pressing stop: the agent goes on, and the chat's next
  // mount resumes the reply, as after a reload (W14: the JS transport stops the agent). Layout
  // effect cleanups run before every passive one, so the flag is up before useChat's cleanup;
  // StrictMode's simulated unmount puts it down again when it re-runs the effect.
  useIsomorphicLayoutEffect(() => {
    entry.transport[DETACH_ABORTS]?.(null, false);
    return () => entry.transport[DETACH_ABORTS]?.(null, true);
  }, [entry]);

  return entry.transport;
}

/**
 * Leaving a chat keeps its reply going: call it right after `useChat` in the component that shows
 * `chatId`. When that component unmounts, or its `useChat` switches to another chat id, useChat
 * calls `chat.stop()`; between this hook's layout cleanup (before every passive one) and its
 * passive cleanup (after useChat's, being declared later) the transport treats that abort of
 * `chatId`'s reply as a detach: the agent finishes the reply and the chat's next mount resumes it
 * (`useChat({ resume: true })`). The stop button (`stop()` at any other time) still stops the
 * agent. A transport from `useTriggerChatTransport` detaches by itself when its own component
 * unmounts; this hook is for the chat id changing, or the chat's component going, without it.
 */
export function useDetachOnLeave(transport, chatId) {
  // The flag this instance raised and has not lowered yet: { transport, chatId }.
  const raised = useRef(null);
  const lower = () => {
    const r = raised.current;
    raised.current = null;
    r?.transport[DETACH_ABORTS](r.chatId, false);
  };
  useIsomorphicLayoutEffect(() => {
    if (typeof transport?.[DETACH_ABORTS] !== "function" || chatId == null) return undefined;
    // Shown again by a Suspense boundary that hid it: React ran the layout cleanup (the flag went
    // up) but neither the passive cleanup nor useChat's, so nothing else lowers it. (After a
    // change of transport or chat id the raised flag is another one, lowered by the passive
    // cleanup that follows.)
    const r = raised.current;
    if (r && r.transport === transport && r.chatId === chatId) lower();
    return () => {
      lower();
      transport[DETACH_ABORTS](chatId, true);
      raised.current = { transport, chatId };
    };
  }, [transport, chatId]);
  useEffect(() => {
    if (typeof transport?.[DETACH_ABORTS] !== "function" || chatId == null) return undefined;
    return lower;
  }, [transport, chatId]);
}

function hasMultiTab(transport) {
  return (
    transport != null &&
    typeof transport.isReadOnly === "function" &&
    typeof transport.hasClaim === "function" &&
    typeof transport.broadcastMessages === "function" &&
    typeof transport.addReadOnlyListener === "function" &&
    typeof transport.addMessagesListener === "function"
  );
}

const DEFAULT_RELEASE_GRACE_MS = 1500;
const DEFAULT_THROTTLE_MS = 50;
// rAF does not run in hidden tabs and can starve under load: a timer backs it up.
const FRAME_BACKSTOP_MS = 100;

/**
 * Read-only state and message sync across the tabs of one chat (multiTab transports).
 *
 * Who broadcasts: only a tab that holds (or just released) the claim on the chat. It keeps
 * broadcasting for `releaseGraceMs` after the release, because the transport releases at the
 * turn-complete record, before React has rendered the last chunks (the JS hook loses them),
 * until another tab takes the chat: then it sends the chat's current messages once and stops.
 * A tab that was read-only, or just opened, never broadcasts, so it cannot overwrite the owner's
 * copy with a stale one; the transport versions broadcasts so receivers drop reordered ones.
 * A tab's own message in flight (`sendingMessageId`) and what follows it stay in every copy it
 * applies; the owner applies copies only while such a message is in flight.
 */
export function useMultiTabChat(transport, chatId, messages, setMessages, options) {
  const graceMs = options?.releaseGraceMs ?? DEFAULT_RELEASE_GRACE_MS;
  const throttleMs = options?.throttleMs ?? DEFAULT_THROTTLE_MS;
  // (Read now, not only in the effect: the first commit already disables a composer that
  // another tab owns. `isReadOnly` is a pure read.)
  // (No chat id yet: inert, as with no transport.)
  const active = hasMultiTab(transport) && chatId != null;
  const readNow = () => active && !!transport.isReadOnly(chatId);
  // (Keyed by transport and chat: what one transport said of a chat says nothing of another.)
  const [readOnly, setReadOnly] = useState(() => ({ transport, chatId, value: readNow() }));
  // Per (transport, chatId): ownership as this tab last saw it, the pending broadcast, and the
  // chat's messages and setter as last committed (a render that is not committed changes
  // nothing; the previous chat's sync keeps its own until its effects are cleaned up).
  // (A memo, not a ref written during render: a render that is not committed, such as an
  // interrupted transition to another chat, must not replace the committed chat's state.)
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const current = useMemo(() => createSync(transport, chatId, messages, setMessages), [transport, chatId]);
  useIsomorphicLayoutEffect(() => {
    current.messages = messages;
    current.setMessages = setMessages;
    current.graceMs = graceMs;
    current.throttleMs = throttleMs;
  });

  useEffect(() => {
    if (!active) return undefined;
    const s = current;
    setReadOnly({ transport, chatId, value: transport.isReadOnly(chatId) });
    const onReadOnly = (id, value) => {
      if (id !== chatId) return;
      setReadOnly({ transport, chatId, value });
      if (value) s.handOver(); // another tab owns the chat now
    };
    const onMessages = (id, received) => {
      if (id !== chatId || !Array.isArray(received)) return;
      // The owner is the source of truth, except for what this tab is sending itself: a send
      // queued behind another tab's turn, or one whose reply is streaming here (the previous
      // owner's last copy may still come in).
      const own = transport.sendingMessageId?.(chatId) ?? null;
      if (own === null && transport.hasClaim(chatId)) return;
      if (!transport.hasClaim(chatId)) s.yieldOwnership();
      s.merge(received, own);
    };
    // A send taken by the server, failed or stopped, a claim taken or given back: none of these
    // need a render, and each can make a broadcast due (or let a deferred one go).
    const onConnection = (id) => {
      if (id !== chatId) return;
      s.observe();
      if (s.mayBroadcast()) s.schedule();
    };
    transport.addReadOnlyListener(onReadOnly);
    transport.addMessagesListener(onMessages);
    transport.addConnectionListener?.(onConnection);
    return () => {
      transport.removeReadOnlyListener?.(onReadOnly);
      transport.removeMessagesListener?.(onMessages);
      transport.removeConnectionListener?.(onConnection);
      // The view leaves (as its reply ends, say: the claim went before the last chunks
      // rendered): the chat as it is now goes out if this tab owns it or just did, or the other
      // tabs would keep the reply cut.
      s.handOver();
    };
  }, [transport, chatId, current]);

  useEffect(() => {
    if (!active) return;
    current.observe();
    if (current.mayBroadcast()) current.schedule();
  }, [transport, chatId, current, messages]);

  const same = readOnly.chatId === chatId && readOnly.transport === transport;
  return { isReadOnly: same ? readOnly.value : readNow() };
}

// Another tab's copy of the conversation with this tab's own message `own` in it: the local
// messages from `own` on (its reply as this tab has it) replace theirs, where that message is
// in the copy (what follows it there stays after it), or at the end (a message waiting behind
// the other tab's turn).
function keepOwn(received, local, own) {
  const at = own === null ? -1 : local.findIndex((m) => m?.id === own);
  if (at < 0) return received;
  const tail = local.slice(at);
  const ids = new Set(tail.map((m) => m?.id));
  const there = received.findIndex((m) => m?.id === own);
  const before = there < 0 ? received : received.slice(0, there);
  const after = there < 0 ? [] : received.slice(there).filter((m) => !ids.has(m?.id));
  return [...before.filter((m) => !ids.has(m?.id)), ...tail, ...after];
}

const UNSTARTED_MESSAGE = Symbol.for("trigger-chat-wasm.unstartedMessageId");
const RELEASED_AT = Symbol.for("trigger-chat-wasm.releasedAt");

// What this tab broadcasts, or null for "not now". Not a message of its own that waits for its
// turn behind another tab's (nor what follows it). And an owner whose new message the server
// has not taken yet waits: the previous owner's last copy, which it takes in, comes first, and
// a copy sent before it could make that one look stale.
function forBroadcast(messages, transport, chatId) {
  const unstarted = transport[UNSTARTED_MESSAGE]?.(chatId) ?? null;
  if (unstarted === null) return messages;
  if (transport.hasClaim(chatId)) return null;
  const at = messages.findIndex((m) => m?.id === unstarted);
  return at < 0 ? messages : messages.slice(0, at);
}

function createSync(transport, chatId, messages, setMessages) {
  const s = {
    transport,
    chatId,
    messages,
    setMessages,
    graceMs: DEFAULT_RELEASE_GRACE_MS,
    throttleMs: DEFAULT_THROTTLE_MS,
    held: false, // this tab held the claim when last checked
    releasedAt: 0, // when this tab's claim went (0: not in a grace period)
    seenRelease: transport?.[RELEASED_AT]?.(chatId) ?? 0, // the last release of it already seen (none: inert)
    lastSent: undefined,
    lastSentAt: 0,
    timer: undefined,
    backstop: undefined,
    frame: undefined,

    // Updates `held` / `releasedAt` from the transport: also a turn that began and ended since
    // the last look (a quick reply between two renders) starts a grace period, from its release.
    observe() {
      if (transport.hasClaim(chatId)) {
        s.held = true;
        s.releasedAt = 0;
        return;
      }
      const released = transport[RELEASED_AT]?.(chatId) ?? 0;
      const fresh = released > s.seenRelease;
      // (A claim taken over by another tab ends without a release of this tab's: now.)
      if (s.held || fresh) s.releasedAt = fresh ? released : Date.now();
      s.held = false;
      s.seenRelease = Math.max(s.seenRelease, released);
    },
    mayBroadcast() {
      return s.held || (s.releasedAt !== 0 && Date.now() - s.releasedAt <= s.graceMs);
    },
    // Another tab took the chat. If this tab's own turn just ended, the conversation as the chat
    // has it now goes out at once, before the new owner's first copy: what React has rendered
    // may lag the last chunks (useChat's throttle), and this tab broadcasts nothing after this.
    handOver() {
      s.observe();
      if (s.mayBroadcast()) {
        let live;
        try {
          // useChat's setMessages hands an updater the chat's current messages at once (a React
          // state setter may call it later: then the rendered ones go).
          s.setMessages((now) => {
            live ??= now;
            return now;
          });
        } catch {
          // Not a setter that takes an updater: the rendered messages go.
        }
        s.send(Array.isArray(live) ? live : s.messages);
      }
      s.yieldOwnership();
    },
    // Applies another tab's copy with this tab's message `own` kept, merged into the chat's
    // messages as they are now (an updater), or as rendered if the setter takes no updater.
    merge(received, own) {
      let merged = false;
      try {
        s.setMessages((local) => {
          const next = keepOwn(received, Array.isArray(local) ? local : s.messages, own);
          merged = true;
          return next;
        });
      } catch {
        // A setter that throws on an updater (or after running it): merge into the rendered
        // messages, unless the updater already ran.
        if (!merged) s.setMessages(keepOwn(received, s.messages, own));
      }
    },
    // Stop broadcasting at once (no grace).
    yieldOwnership() {
      s.held = false;
      s.releasedAt = 0;
      s.cancel();
    },
    schedule() {
      if (s.timer !== undefined || s.frame !== undefined || s.backstop !== undefined) return;
      const wait = Math.max(0, s.lastSentAt + s.throttleMs - Date.now());
      const hidden = typeof document !== "undefined" && document.hidden;
      const raf = typeof requestAnimationFrame === "function" && !hidden;
      if (raf && wait === 0) {
        s.frame = requestAnimationFrame(s.fire);
        s.backstop = setTimeout(s.fire, FRAME_BACKSTOP_MS);
      } else {
        s.timer = setTimeout(s.fire, wait);
      }
    },
    fire() {
      s.cancel();
      s.observe();
      if (s.mayBroadcast()) s.send(s.messages);
    },
    send(messages) {
      if (messages === s.lastSent) return;
      const out = forBroadcast(messages, transport, chatId);
      if (out === null) return; // not yet: the send's next connection change looks again
      s.lastSent = messages;
      s.lastSentAt = Date.now();
      try {
        transport.broadcastMessages(chatId, out);
      } catch {
        // A message that cannot be cloned: the other tabs catch up at the next broadcast.
      }
    },
    cancel() {
      if (s.frame !== undefined && typeof cancelAnimationFrame === "function") {
        cancelAnimationFrame(s.frame);
      }
      clearTimeout(s.timer);
      clearTimeout(s.backstop);
      s.frame = s.timer = s.backstop = undefined;
    },
  };
  return s;
}

/**
 * `sendAction(action)` → `sendMessage(undefined, { body: { action } })`: the action goes through
 * `useChat`, which then owns the response (messages, status, error, stop).
 */
export function useChatActions({ sendMessage }) {
  const sendMessageRef = useCommitted(sendMessage);
  // Called at once, as the JS hook's async function calls it; one that throws rejects the
  // promise, as there.
  const sendAction = useCallback((action) => {
    try {
      return Promise.resolve(sendMessageRef.current(undefined, { body: { action } })).then(() => {});
    } catch (error) {
      return Promise.reject(error);
    }
  }, []);
  return useMemo(() => ({ sendAction }), [sendAction]);
}

/**
 * Seeds the transport's resume cursor from a loaded transcript's `cursors.lastOutEventId`, so the
 * chat's stream starts just after the history already on screen (held until the session exists
 * when it does not yet). Returns whether the transcript carried a cursor.
 */
export function seedTranscriptCursor(transport, chatId, cursors) {
  const lastOutEventId = cursors?.lastOutEventId;
  if (lastOutEventId === undefined || lastOutEventId === null || lastOutEventId === "") return false;
  transport.seedResumeCursor(chatId, String(lastOutEventId));
  return true;
}

const noTranscript = (chatId, isLoading) => ({
  chatId,
  messages: [],
  isLoading,
  error: undefined,
  nextCursor: undefined,
});

/**
 * Loads a chat's history (e.g. through `chat.createLoadTranscriptAction`) to render before the
 * chat connects; with `options.transport`, seeds its resume cursor from the transcript. Loads
 * again when `chatId` or `options.limit` changes; `chatId` undefined loads nothing. A result
 * for a chat that is no longer current is dropped, never shown.
 */
export function useLoadTranscript(chatId, load, options) {
  const [state, setState] = useState(() => noTranscript(chatId, chatId !== undefined));
  const latest = useCommitted({ load, transport: options?.transport });
  const limit = options?.limit;
  // The chat id and limit of the transcript on show: a component hidden and shown again
  // (<Activity>) runs this effect again, and keeps what it loaded.
  const loaded = useRef(null);
  useEffect(() => {
    if (chatId === undefined) {
      loaded.current = null;
      setState(noTranscript(chatId, false));
      return undefined;
    }
    if (loaded.current?.chatId === chatId && loaded.current.limit === limit) return undefined;
    loaded.current = null;
    let current = true;
    setState(noTranscript(chatId, true));
    const params = limit === undefined ? { chatId } : { chatId, limit };
    Promise.resolve()
      // (Not called for a run StrictMode cleaned up at once.)
      .then(() => (current ? latest.current.load(params) : undefined))
      .then((transcript) => {
        if (!current) return;
        const { transport } = latest.current;
        if (transport) seedTranscriptCursor(transport, chatId, transcript?.cursors);
        loaded.current = { chatId, limit };
        setState({
          chatId,
          messages: Array.isArray(transcript?.messages) ? transcript.messages : [],
          isLoading: false,
          error: undefined,
          nextCursor: transcript?.nextCursor,
        });
      })
      .catch((cause) => {
        if (!current) return;
        const error = cause instanceof Error ? cause : new Error(String(cause));
        setState({ ...noTranscript(chatId, false), error });
      });
    return () => {
      current = false;
    };
  }, [chatId, limit]);
  // Until the effect has run for a new chatId, report that chat as loading, not the old one.
  return state.chatId === chatId
    ? { messages: state.messages, isLoading: state.isLoading, error: state.error, nextCursor: state.nextCursor }
    : { messages: [], isLoading: chatId !== undefined, error: undefined, nextCursor: undefined };
}

/**
 * Sub-agents forwarded with `chat.forwardSubAgent`, rebuilt while they run: pass `onData` to
 * `useChat`, read a sub-agent's message with `get(toolCallId)`. Re-renders at most once per
 * `throttleMs`. One store per component instance; it is never disposed, so a component hidden
 * and shown again (`<Activity>`, StrictMode) keeps its messages — it holds nothing but them.
 */
export function useSubAgentMessages(options) {
  const [version, rerender] = useState(0);
  const mounted = useRef(false);
  const missed = useRef(false);
  const store = useRef(null);
  if (store.current === null) {
    store.current = createSubAgentMessages({
      throttleMs: options?.throttleMs,
      onChange: () => {
        if (mounted.current) rerender((n) => n + 1);
        else missed.current = true;
      },
    });
  }
  useEffect(() => {
    mounted.current = true;
    // A change while hidden (<Activity>) is shown now, even if no chunk follows.
    if (missed.current) {
      missed.current = false;
      rerender((n) => n + 1);
    }
    return () => {
      mounted.current = false;
    };
  }, []);
  const { onData, get } = store.current;
  // A new object on each change, as the JS hook's: a memoised child or `useMemo` that depends on
  // it sees that `get` has something new (sub-agent parts are transient: the message does not
  // change).
  return useMemo(() => ({ onData, get }), [onData, get, version]); // eslint-disable-line react-hooks/exhaustive-deps
}

const INJECTED_TYPE = "data-pending-message-injected";

/** Whether an assistant message part marks where steering messages were injected. */
function isInjectionPoint(part) {
  return part !== null && typeof part === "object" && part.type === INJECTED_TYPE;
}

/** The ids of the messages injected at an injection point (`[]` for any other part). */
function getInjectedMessageIds(part) {
  const ids = isInjectionPoint(part) ? part.data?.messageIds : undefined;
  return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
}

/** The `{ id, text }` of the messages injected at an injection point. */
function getInjectedMessages(part) {
  const messages = isInjectionPoint(part) ? part.data?.messages : undefined;
  return Array.isArray(messages) ? messages.filter((m) => m !== null && typeof m === "object") : [];
}

function injectedIds(messages) {
  const ids = new Set();
  for (const message of messages ?? []) {
    if (message?.role !== "assistant" || !Array.isArray(message.parts)) continue;
    for (const part of message.parts) for (const id of getInjectedMessageIds(part)) ids.add(id);
  }
  return ids;
}

// The JS package's React entry also exports these helpers (marked internal there, but importable
// from JavaScript): the same names and results here, so such an import keeps working.
export { isInjectionPoint as isInjectionPart };
export function injectedMessageIdsOf(part) {
  const ids = isInjectionPoint(part) ? part.data?.messageIds : undefined;
  return Array.isArray(ids) ? ids : [];
}
export function injectedMessagesOf(part) {
  const messages = isInjectionPoint(part) ? part.data?.messages : undefined;
  return Array.isArray(messages) ? messages : [];
}
/** The ids injected into `messages`' assistant messages, in order (repeats kept). */
export function collectInjectedMessageIds(messages) {
  const ids = [];
  for (const m of messages) if (m.role === "assistant") for (const p of m.parts ?? []) ids.push(...injectedMessageIdsOf(p));
  return ids;
}

const messageText = (message) =>
  message.parts
    .filter((part) => part.type === "text")
    .map((part) => part.text)
    .join("");

let idCounter = 0;
function newMessageId() {
  const uuid = globalThis.crypto?.randomUUID?.();
  if (uuid) return uuid;
  idCounter += 1;
  return `pending-${Date.now().toString(36)}-${idCounter}-${Math.random().toString(36).slice(2, 10)}`;
}

const inTurn = (status) => status === "streaming" || status === "submitted";
const turnOver = (status) => status === "ready" || status === "error";

/**
 * Messages typed while the agent answers: `steer(text)` sends one to the running turn
 * (`transport.sendPendingMessage`; the agent injects it between steps or answers it next),
 * `queue(text)` keeps one for the next turn. When the turn ends, a steering message the agent
 * did not inject is shown through `sendMessage` with its own id — the transport recognises it and
 * streams the turn that answers it instead of sending it again — and the queued ones go out as
 * one message. A steering message that could not be delivered is sent as a queued one.
 */
const NO_ENTRIES = [];

export function usePendingMessages(options) {
  const { chatId, status, messages } = options;
  // Keyed by chat: the first render after a switch shows none of the last chat's (its effect
  // clears them only after that render is committed, maybe painted).
  const [owned, setOwned] = useState(() => ({ chatId, list: NO_ENTRIES }));
  const entries = owned.chatId === chatId ? owned.list : NO_ENTRIES;
  const setEntries = useCallback(
    (update) => setOwned((o) => ({ chatId: o.chatId, list: typeof update === "function" ? update(o.list) : update })),
    [],
  );
  const latest = useCommitted(options);
  const entriesRef = useCommitted(entries);
  const injected = useMemo(() => injectedIds(messages), [messages]);
  const injectedRef = useCommitted(injected);
  const promoted = useRef(new Set());
  // The status last seen and the chat it belonged to (a switch is not the end of a turn).
  const previousStatus = useRef({ chatId, status });
  const flushing = useRef(false);
  // The follow-up sent a message whose turn has not shown in `status` yet.
  const awaitingTurn = useRef(false);

  const requestOptions = () => {
    const { metadata } = latest.current;
    return metadata ? { metadata } : undefined;
  };
  const deliver = (message) => {
    const { transport, chatId: id, metadata } = latest.current;
    return Promise.resolve()
      .then(() => transport.sendPendingMessage(id, message, metadata))
      .then((sent) => sent === true, () => false);
  };

  // A new chat starts with an empty overlay (not a chat shown again by an <Activity>: its
  // messages are still waiting).
  const overlayChat = useRef(chatId);
  // Counts chat switches: a follow-up started before one is not sent after it (not even when the
  // switch comes back to the same chat, whose overlay it cleared).
  const switches = useRef(0);
  useEffect(() => {
    if (overlayChat.current === chatId) return;
    overlayChat.current = chatId;
    switches.current++;
    setOwned({ chatId, list: NO_ENTRIES });
    entriesRef.current = []; // before the effects below look at it in this same commit
    promoted.current.clear();
    flushing.current = awaitingTurn.current = false;
  }, [chatId]);

  // Hidden (<Activity>) or unmounted: the status changes meanwhile go unseen (useChat stops the
  // reply when hidden), so the first status seen after is not the end of a turn; nor is the
  // first change after that (from a status rendered before the hide, still `streaming`).
  const mounted = useRef(false);
  const shownAgain = useRef(false);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      shownAgain.current = true;
      previousStatus.current = { chatId: previousStatus.current.chatId, status: undefined };
    };
  }, []);

  // Injected messages leave the overlay as soon as the agent confirms them.
  useEffect(() => {
    if (entriesRef.current.some((e) => injected.has(e.id))) {
      setEntries((current) => current.filter((e) => !injected.has(e.id)));
    }
  }, [injected]);

  // At the end of a turn, one step of the follow-up: the next steering message the agent did not
  // inject (its answer is the next turn), else the queued messages as one.
  useEffect(() => {
    // The follow-up's own turn shows: the next end of a turn is its end.
    if (awaitingTurn.current && inTurn(status)) awaitingTurn.current = flushing.current = false;
    if (shownAgain.current) {
      shownAgain.current = false;
      // A reply still on the network (a `Chat` that lives outside the component, which useChat
      // does not stop) is a turn whose end counts.
      const link = latest.current.transport?.connectionState?.(chatId)?.state;
      const running = inTurn(status) && link !== undefined && link !== "idle";
      previousStatus.current = { chatId, status: turnOver(status) || running ? status : undefined };
      return;
    }
    const previous = previousStatus.current;
    const ended = previous.chatId === chatId && inTurn(previous.status) && turnOver(status);
    previousStatus.current = { chatId, status };
    if (!ended || flushing.current) return;
    flushing.current = true;
    const generation = switches.current;
    const flushedChat = chatId;
    (async () => {
      const waiting = entriesRef.current.filter((e) => !injectedRef.current.has(e.id));
      const undelivered = new Set();
      for (const entry of waiting) {
        if (entry.mode !== "steering") continue;
        if (await entry.delivered) {
          if (injectedRef.current.has(entry.id)) continue;
          setEntries((current) => current.filter((e) => e.id !== entry.id));
          const send = () => latest.current.sendMessage({ id: entry.id, role: "user", parts: entry.message.parts }, requestOptions());
          return { send, taken: [entry] };
        }
        undelivered.add(entry.id);
      }
      return takeQueued(waiting.filter((e) => e.mode === "queued" || undelivered.has(e.id)));
    })()
      .catch(() => undefined)
      .then((next) => {
        // A switch since (committed, its effects run or about to): `flushing` is reset by it.
        if (switches.current !== generation || latest.current.chatId !== flushedChat) return;
        const busy = inTurn(latest.current.status);
        // Messages queued while this ran (it read the list when it began), with no turn left
        // whose end would send them (a steering message was injected after all): now.
        if (!next && !busy) {
          next = takeQueued(entriesRef.current.filter((e) => e.mode === "queued" && !injectedRef.current.has(e.id)));
        }
        if (!next || !mounted.current || busy) {
          flushing.current = false;
          // Hidden or gone while a steering message's delivery was awaited (nothing is sent into
          // a chat nobody shows), or a turn started meanwhile (the app sent, or a tool approval
          // did; a second request would run beside it): they wait for the end of the next turn.
          if (next) setEntries((current) => [...next.taken.filter((e) => !current.some((c) => c.id === e.id)), ...current]);
          return;
        }
        // `flushing` stays up until this send's turn shows (the effect above lowers it): until
        // then `steer` and `queue` would see the ended turn and start a second request.
        awaitingTurn.current = true;
        const settled = () => {
          if (awaitingTurn.current) awaitingTurn.current = flushing.current = false;
        };
        // useChat reports a failed send through its `error`.
        Promise.resolve().then(next.send).catch(() => {}).then(settled);
      });
  }, [status, chatId]); // eslint-disable-line react-hooks/exhaustive-deps

  // Takes `queued` out of the overlay: one message with their texts, to send (nothing if none).
  function takeQueued(queued) {
    if (queued.length === 0) return undefined;
    const ids = new Set(queued.map((e) => e.id));
    setEntries((current) => current.filter((e) => !ids.has(e.id)));
    const text = queued.map((e) => messageText(e.message)).join("\n");
    return { send: () => latest.current.sendMessage({ text }, requestOptions()), taken: queued };
  }

  const add = (text, mode) => {
    const message = { id: newMessageId(), role: "user", parts: [{ type: "text", text }] };
    const entry = { id: message.id, message, mode, delivered: mode === "steering" ? deliver(message) : undefined };
    setEntries((current) => [...current, entry]);
  };
  const sendNow = (text) => latest.current.sendMessage({ text }, requestOptions());

  // Steering goes to a turn that is streaming. Before that (its own message may not be on `.in`
  // yet) and while the end-of-turn follow-up is being sent, a message waits for the next turn.
  const steer = useCallback((text) => {
    const { status } = latest.current;
    if (status === "streaming" && !flushing.current) add(text, "steering");
    else if (inTurn(status) || flushing.current) add(text, "queued");
    else void sendNow(text);
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  const queue = useCallback((text) => {
    if (inTurn(latest.current.status) || flushing.current) add(text, "queued");
    else void sendNow(text);
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  const promoteToSteering = useCallback((id) => {
    const entry = entriesRef.current.find((e) => e.id === id);
    if (!entry || entry.mode !== "queued" || promoted.current.has(id)) return;
    if (latest.current.status !== "streaming" || flushing.current) return; // no turn to steer
    promoted.current.add(id);
    const delivered = deliver(entry.message);
    setEntries((current) => current.map((e) => (e.id === id ? { ...e, mode: "steering", delivered } : e)));
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  const pending = useMemo(
    () =>
      entries.map((e) => ({ id: e.id, text: messageText(e.message), mode: e.mode, injected: injected.has(e.id) })),
    [entries, injected],
  );
  return { pending, steer, queue, promoteToSteering, isInjectionPoint, getInjectedMessageIds, getInjectedMessages };
}

const IDLE = Object.freeze({ state: "idle", pendingSends: 0 });
const noop = () => {};

/** The chat's `connectionState`, kept current by the transport's connection listener. */
export function useConnectionState(transport, chatId) {
  const subscribe = useCallback(
    (onChange) => {
      if (!transport || !chatId) return noop;
      const listener = (id) => {
        if (id === chatId) onChange();
      };
      transport.addConnectionListener(listener);
      return () => transport.removeConnectionListener(listener);
    },
    [transport, chatId],
  );
  // `connectionState` returns the same frozen object until the state changes.
  const read = () => (transport && chatId ? transport.connectionState(chatId) : IDLE);
  return useSyncExternalStore(subscribe, read, () => IDLE);
}
