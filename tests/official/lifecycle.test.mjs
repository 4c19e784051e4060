// Reload, stop, continuation runs, upgrades and closed sessions through the official transport.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  admin,
  appends,
  chatState,
  closeSession,
  collect,
  echo,
  eventually,
  makeTransport,
  newChatId,
  outs,
  readUntil,
  requestLog,
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

test("reload mid-turn: a new transport resumes from the persisted session", { timeout: 20_000 }, async () => {
  const chatId = newChatId("reload");
  const tab1 = makeTransport(server.url);
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

  const tab2 = makeTransport(server.url, { sessions: { [chatId]: saved } });
  const resumed = await tab2.transport.reconnectToStream({ chatId });
  assert.ok(resumed, "reconnectToStream returns a stream mid-turn");
  const { message, chunks } = await collect(resumed);
  assert.equal(textOf(message), slowReply(text), "full text, nothing duplicated");
  assert.equal(chunks.filter((c) => c.type === "start").length, 1);
  assert.equal(tab2.calls.start, 0, "no new session");
  const state = await chatState(server.url, chatId);
  assert.equal(state.inRecords.filter((r) => r.kind === "stop").length, 0, "the reload sent no stop");
});

test("reconnect after a finished turn closes at once (settled peek)", { timeout: 15_000 }, async () => {
  const chatId = newChatId("settled");
  const tab1 = makeTransport(server.url);
  await collect(await send(tab1.transport, chatId, [userMessage("done soon")]));
  const saved = tab1.persisted[chatId];
  assert.equal(saved.isStreaming, false);
  // A session persisted without the streaming flag still reconnects, with X-Peek-Settled.
  const hydrated = { publicAccessToken: saved.publicAccessToken, lastEventId: saved.lastEventId };
  const tab2 = makeTransport(server.url, { sessions: { [chatId]: hydrated } });
  const startedAt = Date.now();
  const stream = await tab2.transport.reconnectToStream({ chatId });
  const { chunks } = await collect(stream);
  assert.deepEqual(chunks, []);
  assert.ok(Date.now() - startedAt < 3_000, "closed without waiting out the long poll");
  const last = outs(await requestLog(server.url, chatId)).at(-1);
  assert.equal(last.headers["x-peek-settled"], "1");
});

test("stopGeneration mid-turn, then a new turn", { timeout: 20_000 }, async () => {
  const chatId = newChatId("stop");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("slow please");
  const reader = (await send(transport, chatId, [u1])).getReader();
  let seen = 0;
  const partial = await readUntil(reader, (c) => isDelta(c) && ++seen === 3);
  assert.equal(await transport.stopGeneration(chatId), true);
  for (;;) if ((await reader.read()).done) break;

  await eventually(async () => !(await chatState(server.url, chatId)).currentTurnActive);
  const u2 = userMessage("after the stop");
  const partialMessage = { id: partial[0].messageId, role: "assistant", parts: [] };
  const { message, chunks } = await collect(await send(transport, chatId, [u1, partialMessage, u2]));
  assert.equal(textOf(message), echo("after the stop"));
  assert.ok(!chunks.some((c) => c.type === "abort"), "the stopped turn's tail stays out");
  const state = await chatState(server.url, chatId);
  assert.deepEqual(
    state.inRecords.map((r) => r.kind),
    ["message", "stop", "message"],
  );
  assert.equal(state.turns, 2);
});

test("a run that ended is continued by the next message", { timeout: 15_000 }, async () => {
  const chatId = newChatId("continue");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("one");
  const r1 = await collect(await send(transport, chatId, [u1]));
  const before = await chatState(server.url, chatId);
  await admin(server.url, `/chats/${chatId}/end-run`, { method: "POST" });
  await eventually(async () => !(await chatState(server.url, chatId)).runActive);

  const r2 = await collect(await send(transport, chatId, [u1, r1.message, userMessage("two")]));
  assert.equal(textOf(r2.message), echo("two"));
  const state = await chatState(server.url, chatId);
  assert.equal(state.runs, before.runs + 1);
  assert.notEqual(state.currentRunId, before.currentRunId);
  assert.ok(state.lastSeq > before.lastSeq, "seq_num continues across runs");
});

test("upgrade-required mid-turn is invisible to the UI", { timeout: 15_000 }, async () => {
  const chatId = newChatId("upgrade");
  const { transport } = makeTransport(server.url);
  await transport.preload(chatId);
  await admin(server.url, `/chats/${chatId}/upgrade`, { method: "POST" });
  const { message, chunks } = await collect(await send(transport, chatId, [userMessage("hello v2")]));
  assert.equal(textOf(message), echo("hello v2"));
  assert.ok(chunks.every((c) => !String(c.type).startsWith("trigger")));
  assert.equal((await chatState(server.url, chatId)).runs, 2);
});

test("a closed session refuses sends with session_closed", { timeout: 15_000 }, async () => {
  const chatId = newChatId("closed");
  const { transport, events } = makeTransport(server.url);
  await collect(await send(transport, chatId, [userMessage("hi")]));
  await closeSession(server.url, chatId, "user-ended");

  await assert.rejects(send(transport, chatId, [userMessage("anyone?")]), (err) => {
    assert.equal(err.status, 409);
    assert.equal(err.code, "session_closed");
    assert.equal(err.closedReason, "user-ended");
    return true;
  });
  const closed = events.find((e) => e.type === "session-closed");
  assert.equal(closed.source, "append");
  assert.equal(closed.reason, "user-ended");
  assert.equal(transport.sessionStatus(chatId), "closed");
  const before = appends(await requestLog(server.url, chatId)).length;
  await assert.rejects(send(transport, chatId, [userMessage("still there?")]));
  assert.equal(appends(await requestLog(server.url, chatId)).length, before, "refused locally");
  const restart = await fetch(`${server.url}/api/chat/${chatId}/start`, { method: "POST", body: "{}" });
  assert.equal(restart.status, 409);
});

test("the agent closing the session ends the stream with session-closed", { timeout: 15_000 }, async () => {
  const chatId = newChatId("goodbye");
  const { transport, events } = makeTransport(server.url);
  const { message } = await collect(await send(transport, chatId, [userMessage("goodbye")]));
  assert.equal(textOf(message), "Goodbye! This conversation is now closed.");
  const closed = events.find((e) => e.type === "session-closed");
  assert.equal(closed?.source, "stream");
  assert.equal(closed?.reason, "agent-closed");
  assert.equal(transport.sessionStatus(chatId), "closed");
});

test("a stale persisted session is recreated through startSession", { timeout: 15_000 }, async () => {
  const chatId = newChatId("stale");
  const { transport, calls } = makeTransport(server.url, {
    // A token for this chat from an earlier server process: valid signature, no session here.
    sessions: { [chatId]: { publicAccessToken: await mintToken(chatId), lastEventId: "41" } },
  });
  const { message } = await collect(await send(transport, chatId, [userMessage("hello again")]));
  assert.equal(textOf(message), echo("hello again"));
  assert.equal(calls.start, 1);
});

async function mintToken(chatId) {
  const res = await fetch(`${server.url}/api/chat/${chatId}/token`, { method: "POST" });
  return (await res.json()).publicAccessToken;
}
