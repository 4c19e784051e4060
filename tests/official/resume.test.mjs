// Reload and resume, for every transport (transports.mjs): a new transport hydrated from the
// persisted session picks up the turn in flight (`reconnectToStream`), read directly, through the
// AI SDK's Chat the way `useChat({ resume: true })` does, and from a persistence store.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import {
  Chat,
  chatState,
  collect,
  echo,
  makeTransport,
  mapStore,
  newChatId,
  outs,
  readUntil,
  requestLog,
  scenario,
  send,
  slowReply,
  startServer,
  textOf,
  userMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer(["--run-idle-timeout-ms", "60000"]);
});
after(() => server.stop());

const isDelta = (c) => c.type === "text-delta";

scenario("reload mid-turn: a new transport resumes from the persisted session", { timeout: 20_000 }, async (impl) => {
  const chatId = newChatId("reload");
  const tab1 = makeTransport(impl, server.url);
  const u1 = userMessage("warm up");
  const r1 = await collect(await send(tab1.transport, chatId, [u1]));
  assert.equal(textOf(r1.message), echo("warm up"));

  const text = "please be slow";
  const stream = await send(tab1.transport, chatId, [u1, r1.message, userMessage(text)]);
  const reader = stream.getReader();
  let seen = 0;
  await readUntil(reader, (c) => isDelta(c) && ++seen === 5);
  // The page goes away: no stop is sent, the reader is just dropped.
  await reader.cancel();
  const saved = structuredClone(tab1.persisted[chatId]);
  assert.equal(saved.isStreaming, true);

  const tab2 = makeTransport(impl, server.url, { sessions: { [chatId]: saved } });
  const resumed = await tab2.transport.reconnectToStream({ chatId });
  assert.ok(resumed, "reconnectToStream returns a stream mid-turn");
  const { message, chunks } = await collect(resumed);
  assert.equal(textOf(message), slowReply(text), "full text, nothing duplicated");
  assert.equal(chunks.filter((c) => c.type === "start").length, 1);
  assert.equal(tab2.calls.start, 0, "no new session");
  const state = await chatState(server.url, chatId);
  assert.equal(state.inRecords.filter((r) => r.kind === "stop").length, 0, "the reload sent no stop");
});

// A reload mid-turn seen through the AI SDK, the way `useChat({ resume: true })` does it: the
// page's chat is rebuilt from the app's own storage, `Chat.resumeStream()` calls
// `reconnectToStream` and feeds the stream to the SDK's reducer, which honours the transport's
// `resumeStreamIsReplay` (a replayed turn replaces the message instead of appending to it).

for (const partialSaved of [false, true]) {
  scenario(
    `reload mid-turn through the AI SDK Chat (${partialSaved ? "the partial reply was saved" : "only finished messages were saved"}): full text exactly once`,
    { timeout: 20_000 },
    async (impl) => {
      const chatId = newChatId("ai-reload");
      const tab1 = makeTransport(impl, server.url);
      // Page 1: one finished turn through the SDK, then a slow one that is cut off mid-reply.
      const chat1 = new Chat({ id: chatId, transport: tab1.transport });
      await chat1.sendMessage({ text: "warm up" });
      assert.equal(chat1.status, "ready");
      assert.equal(textOf(chat1.lastMessage), echo("warm up"));
      const text = "please be slow";
      const u2 = userMessage(text);
      const stream = await send(tab1.transport, chatId, [...chat1.messages, u2]);
      // Page 1 goes away after rendering 5 deltas: what it persisted by then is what page 2 gets
      // (nothing runs at unload: no stop is sent, the reader is just dropped).
      let saved;
      const partial = await collectSome(stream, 5, () => (saved = structuredClone(tab1.persisted[chatId])));
      assert.ok(textOf(partial).length > 0 && textOf(partial) !== slowReply(text));
      assert.equal(saved.isStreaming, true);

      // Page 2: a new transport hydrated from the persisted session, a chat from saved messages.
      const tab2 = makeTransport(impl, server.url, { sessions: { [chatId]: saved } });
      assert.equal(tab2.transport.resumeStreamIsReplay || false, impl.resumeStreamIsReplay);
      const messages = [...chat1.messages, u2, ...(partialSaved ? [partial] : [])];
      const errors = [];
      const chat2 = new Chat({ id: chatId, messages, transport: tab2.transport, onError: (e) => errors.push(e) });
      await chat2.resumeStream();
      assert.deepEqual(errors, []);
      assert.equal(chat2.status, "ready");
      assert.deepEqual(
        chat2.messages.map((m) => m.role),
        ["user", "assistant", "user", "assistant"],
        "no duplicated message",
      );
      const reply = chat2.lastMessage;
      assert.equal(reply.id, partial.id, "the reply keeps the agent's message id");
      assert.equal(textOf(reply), slowReply(text), "the full text, exactly once");
      assert.equal(reply.parts.filter((p) => p.type === "text").length, 1);
      assert.equal(tab2.calls.start, 0, "no new session");
      const state = await chatState(server.url, chatId);
      assert.equal(state.inRecords.filter((r) => r.kind === "stop").length, 0, "the reload sent no stop");
    },
  );
}

/**
 * Reads a stream with the AI SDK reducer until `n` text deltas arrived, calls `onCut`, then drops
 * the stream. Resolves to the partial message.
 */
async function collectSome(stream, n, onCut) {
  const reader = stream.getReader();
  let deltas = 0;
  const cut = new ReadableStream({
    async pull(controller) {
      if (deltas >= n) {
        onCut();
        await reader.cancel();
        controller.close();
        return;
      }
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (isDelta(value)) deltas++;
      controller.enqueue(value);
    },
  });
  return (await collect(cut)).message;
}


scenario("reconnect after a finished turn closes at once (settled peek)", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("settled");
  const tab1 = makeTransport(impl, server.url);
  await collect(await send(tab1.transport, chatId, [userMessage("done soon")]));
  const saved = tab1.persisted[chatId];
  assert.equal(saved.isStreaming, false);
  // A session persisted without the streaming flag still reconnects, with X-Peek-Settled.
  const hydrated = { publicAccessToken: saved.publicAccessToken, lastEventId: saved.lastEventId };
  const tab2 = makeTransport(impl, server.url, { sessions: { [chatId]: hydrated } });
  const startedAt = Date.now();
  const stream = await tab2.transport.reconnectToStream({ chatId });
  const { chunks } = await collect(stream);
  assert.deepEqual(chunks, []);
  assert.ok(Date.now() - startedAt < 3_000, "closed without waiting out the long poll");
  const last = outs(await requestLog(server.url, chatId)).at(-1);
  assert.equal(last.headers["x-peek-settled"], "1");
});


// `persistence` is an option of trigger-chat-wasm only (the official transport persists through
// `sessions` + `onSessionChange`, exercised above).
const noPersistenceOption = { official: "persistence is a trigger-chat-wasm option" };

scenario(
  "reload mid-turn through a { load, save, remove } persistence store",
  { timeout: 20_000, skip: noPersistenceOption },
  async (impl) => {
    const chatId = newChatId("store-reload");
    const db = new Map();
    const tab1 = makeTransport(impl, server.url, { persistence: mapStore(db), onSessionChange: undefined });
    const text = "slow from the store";
    const reader = (await send(tab1.transport, chatId, [userMessage(text)])).getReader();
    let seen = 0;
    await readUntil(reader, (c) => isDelta(c) && ++seen === 5);
    // The page goes away; the next page finds the session in the store.
    const saved = new Map(db);
    await reader.cancel();
    assert.equal(saved.get(chatId)?.isStreaming, true);

    const tab2 = makeTransport(impl, server.url, { persistence: mapStore(saved), onSessionChange: undefined });
    assert.equal(tab2.transport.getSession(chatId)?.isStreaming, true, "readable before first use");
    const resumed = await tab2.transport.reconnectToStream({ chatId });
    assert.ok(resumed);
    const { message } = await collect(resumed);
    assert.equal(textOf(message), slowReply(text));
    assert.equal(tab2.calls.start, 0);
    assert.equal(saved.get(chatId).isStreaming, false, "the store saw the turn end");
    tab2.transport.removeSession(chatId);
    assert.equal(saved.has(chatId), false, "removeSession removes it from the store");
  },
);
