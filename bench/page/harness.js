// The in-page half of the benchmark: the same work for every implementation. Each page
// (ours.js, official.js, raw.js) calls `install(impl)`; bench/run.mjs drives `window.bench`
// through Playwright's `page.evaluate`.
//
// impl = {
//   name,
//   send(chatId, text, options) → Promise<ReadableStream<UIMessageChunk>>   one turn
//   reconnect?(chatId) → Promise<ReadableStream | null>                    useChat({ resume })
//   wasmBytes() → number | null                                            linear memory size
//   transport?                                                             the transport object
//   create?(options) → a new transport with these extra options            a reload's new page
// }
//
// Every consumer below reads the returned ReadableStream with one reader, as `useChat` does.

import { AbstractChat } from "ai";

const now = () => performance.now();
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Long tasks (> 50 ms on the main thread), recorded from page load on.
const longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: "longtask", buffered: true });
} catch {
  // No long-task API: reported as null.
}
const longTaskApi = PerformanceObserver.supportedEntryTypes?.includes("longtask") ?? false;

function longTasksBetween(t0, t1) {
  if (!longTaskApi) return null;
  let total = 0;
  let count = 0;
  let max = 0;
  for (const e of longTasks) {
    if (e.start + e.duration < t0 || e.start > t1) continue;
    total += e.duration;
    count++;
    max = Math.max(max, e.duration);
  }
  return { totalMs: total, count, maxMs: max };
}

function jsHeap() {
  return performance.memory ? performance.memory.usedJSHeapSize : null;
}

async function gc() {
  if (typeof globalThis.gc !== "function") return false;
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await sleep(0);
  }
  return true;
}

export const userMessage = (text) => ({
  id: `u-${Math.random().toString(36).slice(2)}`,
  role: "user",
  parts: [{ type: "text", text }],
});

/** `sendMessages` as `useChat` calls it for a new user message. */
export function sendWith(transport, chatId, text, abortSignal) {
  return transport.sendMessages({
    trigger: "submit-message",
    chatId,
    messageId: undefined,
    messages: [userMessage(text)],
    abortSignal,
  });
}

/** The app's server endpoints, as a real app wires `startSession` / `accessToken`. */
export const appCallbacks = (origin) => ({
  task: "ai-chat",
  baseURL: origin,
  startSession: async ({ chatId, taskId, clientData }) => {
    const res = await fetch(`${origin}/api/chat/${encodeURIComponent(chatId)}/start`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ taskId, clientData }),
    });
    if (!res.ok) throw new Error(`start failed: ${res.status}`);
    return res.json();
  },
  accessToken: async ({ chatId }) => {
    const res = await fetch(`${origin}/api/chat/${encodeURIComponent(chatId)}/token`, { method: "POST" });
    if (!res.ok) throw new Error(`token failed: ${res.status}`);
    return (await res.json()).publicAccessToken;
  },
});

export function install(impl) {
  const mem = () => ({ jsHeap: jsHeap(), wasm: impl.wasmBytes() });

  /**
   * One turn: `send`, then read the stream to its end.
   *   sampleEvery   record { chunks, ms, jsHeap, wasm } every N chunks (no GC in between)
   *   delays        record the wall-clock time each text-delta is read
   *   slowMs        a deliberately slow consumer: wait this long after each chunk…
   *   durationMs    …and cancel the stream after this long, sampling memory every 500 ms
   */
  async function turn({ chatId, text, sampleEvery = 0, delays = false, slowMs = 0, durationMs = 0 }) {
    const before = mem();
    const samples = [];
    const deltaTimes = delays ? [] : null;
    let chunks = 0;
    let deltas = 0;
    let deltaChars = 0;
    let first = null;
    let sawFinish = false;
    const t0 = now();
    const stream = await impl.send(chatId, text);
    const tResolved = now();
    const reader = stream.getReader();
    const stopAt = durationMs ? t0 + durationMs : Infinity;
    let nextSample = durationMs ? t0 + 500 : Infinity;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (first === null) first = now();
      chunks++;
      if (value.type === "text-delta") {
        deltas++;
        deltaChars += value.delta.length;
        if (deltaTimes) deltaTimes.push(wall());
      } else if (value.type === "finish") sawFinish = true;
      if (sampleEvery && chunks % sampleEvery === 0) {
        samples.push({ chunks, ms: now() - t0, ...mem() });
      }
      if (slowMs) {
        await sleep(slowMs);
        const t = now();
        if (t >= nextSample) {
          samples.push({ chunks, ms: t - t0, ...mem() });
          nextSample += 500;
        }
        if (t >= stopAt) {
          await reader.cancel();
          break;
        }
      }
    }
    const tEnd = now();
    return {
      chunks,
      deltas,
      deltaChars,
      sawFinish,
      resolvedMs: tResolved - t0,
      firstChunkMs: first === null ? null : first - t0,
      totalMs: tEnd - t0,
      longTasks: longTasksBetween(t0, tEnd),
      before,
      after: mem(),
      samples,
      deltaTimes,
    };
  }

  /** `n` short echo turns on one chat, one after another; memory after a GC before and after. */
  async function turns({ chatId, n, warmup = 5 }) {
    const one = async (i) => {
      const stream = await impl.send(chatId, `hello ${i}`);
      const reader = stream.getReader();
      let chunks = 0;
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
        chunks++;
      }
      return chunks;
    };
    for (let i = 0; i < warmup; i++) await one(-1 - i);
    await gc();
    const before = mem();
    const t0 = now();
    let chunks = 0;
    for (let i = 0; i < n; i++) chunks += await one(i);
    const totalMs = now() - t0;
    const peak = mem();
    await gc();
    return { n, chunks, totalMs, before, peak, after: mem() };
  }

  /**
   * A reload after a long reply, through the AI SDK's `Chat` (what `useChat` drives): one turn of
   * `text` is read to its end on a first transport; a second one, hydrated with the session as it
   * was persisted when the send returned (turn in flight), resumes it as `useChat({ resume: true })`
   * does, replaying the whole turn. The chat's state renders like React's `useChat`: every
   * message update schedules a render, and the renders scheduled in one microtask checkpoint are
   * one (React flushes `useSyncExternalStore` updates in a microtask); a render writes the
   * reply's text into the page.
   */
  async function replay({ chatId, text, options = {} }) {
    let saved = null;
    const first = impl.create({
      ...options,
      onSessionChange: (id, session) => {
        if (id === chatId && session?.isStreaming && saved === null) saved = structuredClone(session);
      },
    });
    const user = userMessage(text);
    const stream = await first.sendMessages({
      trigger: "submit-message",
      chatId,
      messageId: undefined,
      messages: [user],
      abortSignal: undefined,
    });
    const reader = stream.getReader();
    while (!(await reader.read()).done);
    if (saved === null) throw new Error("no in-flight session was persisted");
    const second = impl.create({ ...options, sessions: { [chatId]: saved } });
    const view = document.body.appendChild(document.createElement("pre"));
    const state = new RenderedChatState([user], (messages) => {
      const last = messages[messages.length - 1];
      view.textContent = last.parts.map((p) => (p.type === "text" ? p.text : "")).join("");
    });
    const errors = [];
    const chat = new ReplayChat({ id: chatId, transport: second, state, onError: (e) => errors.push(String(e?.message ?? e)) });
    const t0 = now();
    await chat.resumeStream();
    await Promise.resolve(); // the last scheduled render
    const t1 = now();
    const rendered = view.textContent.length;
    view.remove();
    first.dispose?.();
    second.dispose?.();
    return {
      totalMs: t1 - t0,
      updates: state.updates,
      renders: state.renders,
      renderedChars: rendered,
      roles: chat.messages.map((m) => m.role),
      status: chat.status,
      errors,
      longTasks: longTasksBetween(t0, t1),
    };
  }

  // ---- multi-tab: a tab as an app with useChat({ resume: true }) + multiTab has it ----
  const tab = { reading: 0, chunks: 0, errors: [] };
  const drain = async (stream) => {
    tab.reading++;
    try {
      const reader = stream.getReader();
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
        tab.chunks++;
      }
    } catch (e) {
      tab.errors.push(String(e?.message ?? e));
    } finally {
      tab.reading--;
    }
  };

  /** On load: what useChat({ resume: true }) does — reconnect, and read what comes. */
  async function tabOpen({ chatId }) {
    const stream = impl.reconnect ? await impl.reconnect(chatId) : null;
    if (stream) drain(stream);
    return { resumed: !!stream, readOnly: impl.transport?.isReadOnly?.(chatId) ?? null };
  }

  /** A send from this tab, read in the background. */
  async function tabSend({ chatId, text }) {
    try {
      const stream = await impl.send(chatId, text);
      drain(stream);
      return { sent: true };
    } catch (e) {
      return { sent: false, error: String(e?.message ?? e) };
    }
  }

  const tabStatus = ({ chatId }) => ({
    reading: tab.reading,
    chunks: tab.chunks,
    errors: tab.errors,
    readOnly: impl.transport?.isReadOnly?.(chatId) ?? null,
  });

  window.bench = {
    name: impl.name,
    ready: true,
    turn,
    turns,
    gc,
    mem,
    tabOpen,
    tabSend,
    tabStatus,
    replay,
    env: () => ({
      userAgent: navigator.userAgent,
      preciseMemory: !!performance.memory,
      gc: typeof globalThis.gc === "function",
      longTaskApi,
    }),
  };
}

/** `@ai-sdk/react`'s chat state, with its renders counted (see `replay`). */
class RenderedChatState {
  constructor(messages, render) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
    this.updates = 0;
    this.renders = 0;
    this.scheduled = false;
    this.render = render;
  }
  #changed() {
    this.updates++;
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.renders++;
      this.render(this.messages);
    });
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
    this.#changed();
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
    this.#changed();
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
    this.#changed();
  };
  // What @ai-sdk/react stores: a copy of the message and of each part.
  snapshot = (m) => (m && Array.isArray(m.parts) ? { ...m, parts: m.parts.map((p) => ({ ...p })) } : m);
}

class ReplayChat extends AbstractChat {}
