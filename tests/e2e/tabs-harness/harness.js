// One chat tab without React, driven by tests/e2e/tabs-pages.test.mjs through `window.harness`.
//
// `harness.create({kind, chatId})` builds one transport with `multiTab: true`: ours from
// ./pkg/index.js (kind "wasm", `persistence: "none"` unless told otherwise: the tabs of one
// browser context share localStorage, and these scenarios are about the tab channel, not about
// stored sessions) or the official one from ./official-chat.js (kind "official", which keeps
// sessions in memory only). The tab then behaves like an app using `useMultiTabChat`:
//   - `send(text)` calls `sendMessages` like useChat (the whole conversation, the last message
//     new), reads the returned stream into an assistant message and, as the writer, broadcasts
//     the conversation after every chunk and once more at the end;
//   - a tab that does not own the chat takes the copies other tabs broadcast;
//   - read-only changes and copies received are logged with their `Date.now()`.
// Every result is plain data (page.evaluate returns it); a rejected send resolves to
// `{ok: false, code, name, message}` instead of throwing.

const tab = {
  kind: null,
  chatId: null,
  transport: null,
  messages: [],
  readOnlyLog: [],
  received: [],
  events: [],
  sends: [],
  turn: null,
  unread: null,
  spy: null,
  channel: [],
  createdAt: 0,
  n: 0,
};

const postJson = async (path, body) => {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

// The demo server's customer endpoints (what an app's backend does with its secret key).
const startSession = ({ chatId, taskId, clientData }) =>
  postJson(`/api/chat/${encodeURIComponent(chatId)}/start`, { taskId, clientData });
const accessToken = async ({ chatId }) =>
  (await postJson(`/api/chat/${encodeURIComponent(chatId)}/token`, {})).publicAccessToken;

const textOf = (message) =>
  (message?.parts ?? [])
    .filter((p) => p.type === "text")
    .map((p) => p.text)
    .join("");

function publish() {
  try {
    tab.transport.broadcastMessages(tab.chatId, tab.messages);
  } catch (error) {
    tab.events.push({ type: "broadcast-threw", message: String(error?.message ?? error) });
  }
}

async function consume(stream, sendRecord) {
  const reader = stream.getReader();
  let assistant = null;
  try {
    for (;;) {
      const { done, value: chunk } = await reader.read();
      if (done) break;
      // Evidence for failures: the chunks of this reply, compactly.
      sendRecord.chunks ??= [];
      if (sendRecord.chunks.length < 120) {
        sendRecord.chunks.push(chunk.type === "text-delta" ? JSON.stringify(chunk.delta) : chunk.type === "start" ? `start(${chunk.messageId ?? ""})` : chunk.type);
      }
      if (chunk.type === "start" || (!assistant && chunk.type === "text-delta")) {
        if (!assistant) {
          assistant = { id: chunk.messageId ?? `assistant-${tab.n}`, role: "assistant", parts: [{ type: "text", text: "" }] };
          tab.messages = [...tab.messages, assistant];
        }
      }
      if (chunk.type === "text-delta") {
        assistant = { ...assistant, parts: [{ type: "text", text: assistant.parts[0].text + chunk.delta }] };
        tab.messages = [...tab.messages.slice(0, -1), assistant];
      } else if (chunk.type === "error") {
        sendRecord.chunkError = chunk.errorText;
      }
      publish();
    }
    sendRecord.end = { ok: true, at: Date.now(), text: textOf(assistant) };
  } catch (error) {
    sendRecord.end = { ok: false, at: Date.now(), code: error?.code, message: String(error?.message ?? error) };
  }
  publish(); // the final state, whatever the claim says by now
  return sendRecord.end;
}

window.harness = {
  /** Builds this tab's transport and starts its tab channel; resolves once it is listening. */
  async create({ kind, chatId, persistence = "none", module = "./pkg/index.js", wasmAt }) {
    tab.kind = kind;
    tab.chatId = chatId;
    // A silent observer of the tab channel (evidence for a failing assertion; it never posts).
    const spy = (tab.spy = new BroadcastChannel("trigger-chat-tab-coord"));
    spy.onmessage = ({ data }) => {
      if (data?.chatId !== undefined && data.chatId !== chatId) return;
      const { type, tabId, lock, at, v } = data ?? {};
      tab.channel.push({ seen: Date.now(), type, tab: String(tabId).slice(0, 8), lock, at, v });
      if (tab.channel.length > 200) tab.channel.shift();
    };
    const common = {
      task: "ai-chat",
      baseURL: window.location.origin,
      multiTab: true,
      startSession,
      accessToken,
      onEvent: (event) => tab.events.push({ type: event.type, at: Date.now(), error: event.error?.message }),
    };
    if (kind === "official") {
      const { TriggerChatTransport } = await import("./official-chat.js");
      tab.transport = new TriggerChatTransport(common); // its coordinator starts in the constructor
    } else {
      const { TriggerChatTransport, init } = await import(module);
      if (wasmAt === undefined) {
        await init();
        tab.transport = new TriggerChatTransport({ ...common, persistence });
      } else {
        // As an app whose .wasm is served elsewhere: the transport is built (during render),
        // then `init` is told where the module is (in an effect).
        tab.transport = new TriggerChatTransport({ ...common, persistence });
        // A call made before `init` (useChat's resume on mount) waits for the module too.
        const early = tab.transport.reconnectToStream({ chatId }).then(
          () => "ok",
          (e) => `failed: ${e?.message ?? e}`,
        );
        // As a bundler hands it over (Vite's `?url` import, dynamic): a promise of a URL string.
        await init(Promise.resolve(new URL(wasmAt, location.href).href));
        tab.early = await early;
      }
    }
    tab.createdAt = Date.now();
    tab.transport.addReadOnlyListener((id, value) => {
      if (id === tab.chatId) tab.readOnlyLog.push({ at: Date.now(), value });
    });
    tab.transport.addMessagesListener((id, messages) => {
      if (id !== tab.chatId || tab.transport.hasClaim(id)) return; // the writer is the source of truth
      tab.messages = messages;
      tab.received.push({ at: Date.now(), count: messages.length, lastText: textOf(messages.at(-1)) });
    });
    // Ours opens its channel when the module is ready (addReadOnlyListener asked for it): wait
    // until it has, so the caller's clock starts with a listening tab.
    await new Promise((r) => setTimeout(r, 50));
    return { createdAt: tab.createdAt, now: Date.now(), early: tab.early };
  },

  /**
   * A user sends `text`: resolves when `sendMessages` settles (the reply keeps streaming).
   * `{read: false}` leaves the reply unread until `readReply()` (a consumer that is slow to pull);
   * `{at}` calls `sendMessages` at that `Date.now()`, so tabs given one instant send together
   * whatever the delay of the evaluate calls that asked them to.
   */
  async send(text, { read = true, at } = {}) {
    if (at !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
    tab.n += 1;
    const user = { id: `user-${tab.n}-${Math.random().toString(36).slice(2, 8)}`, role: "user", parts: [{ type: "text", text }] };
    const messages = [...tab.messages, user];
    const record = { text, calledAt: Date.now() };
    tab.sends.push(record);
    let stream;
    try {
      stream = await tab.transport.sendMessages({
        chatId: tab.chatId,
        trigger: "submit-message",
        messageId: undefined,
        messages,
        abortSignal: new AbortController().signal,
        body: undefined,
        metadata: undefined,
      });
    } catch (error) {
      record.result = { ok: false, at: Date.now(), code: error?.code, name: error?.name, message: String(error?.message ?? error) };
      return record.result;
    }
    tab.messages = messages;
    publish();
    record.result = { ok: true, at: Date.now() };
    if (read) tab.turn = consume(stream, record);
    else tab.unread = () => (tab.turn = consume(stream, record));
    return record.result;
  },

  /** Starts reading a reply left unread by `send(text, {read: false})`. */
  readReply: () => void tab.unread?.(),

  /** The current turn's end: `{ok, at, text}` (or `{ok: false, …}` if its stream failed). */
  turnEnd: () => tab.turn,

  isReadOnly: () => tab.transport.isReadOnly(tab.chatId),
  hasClaim: () => tab.transport.hasClaim(tab.chatId),
  texts: () => tab.messages.map((m) => [m.role, textOf(m)]),
  lastText: () => textOf(tab.messages.at(-1)),

  info: () => ({
    kind: tab.kind,
    chatId: tab.chatId,
    createdAt: tab.createdAt,
    isReadOnly: tab.transport?.isReadOnly(tab.chatId) ?? null,
    hasClaim: tab.transport?.hasClaim(tab.chatId) ?? null,
    readOnlyLog: tab.readOnlyLog,
    received: tab.received.slice(-20),
    receivedCount: tab.received.length,
    sends: tab.sends,
    events: tab.events.map((e) => `${e.type}${e.error ? `(${e.error})` : ""}`),
  }),

  /** The tab-channel messages about this chat this page has seen (`who` included). */
  channel: () => tab.channel.filter((m) => m.type !== "messages"),

  /**
   * Polls `isReadOnly` every `interval` ms until it equals `value` or `timeout` passes;
   * resolves to the `Date.now()` it did (or null). In the page, so the figure is not a
   * round trip of the test's polling.
   */
  async waitReadOnly(value, timeout = 15_000, interval = 20) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (tab.transport.isReadOnly(tab.chatId) === value) return Date.now();
      if (Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, interval));
    }
  },

  /** Closes the transport (releases this tab's claims). */
  dispose: () => tab.transport.dispose(),
};
