// The JS transport's two optional modes, for every transport (transports.mjs): `headStart` (a
// chat's first turn posted to the app's `chat.headStart` handler, here the emulator's) and
// `watch` (a viewer's `reconnectToStream` that follows every later turn on one stream).
import assert from "node:assert/strict";
import { after, before } from "node:test";
import {
  appends,
  collect,
  echo,
  eventually,
  makeTransport,
  newChatId,
  readUntil,
  requestLog,
  scenario,
  send,
  setFaults,
  startServer,
  textOf,
  userMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

scenario("headStart: the first turn streams through the handler, the next goes to .in", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("head-start");
  const headStart = `${server.url}/api/chat/head-start`;
  const { transport, events, persisted, calls } = makeTransport(impl, server.url, { headStart });
  const hello = userMessage("hello");
  const first = await collect(await send(transport, chatId, [hello]));
  assert.equal(textOf(first.message), echo("hello"));
  assert.ok(!first.chunks.some((c) => String(c.type).startsWith("trigger:")), "control chunks stay inside");
  assert.equal(calls.start, 0, "the handler created the session");
  assert.equal(typeof persisted[chatId]?.publicAccessToken, "string");
  assert.equal(persisted[chatId].isStreaming, false);
  const sent = events.filter((e) => e.type === "message-sent").map((e) => e.source);
  assert.deepEqual(sent, ["head-start"]);
  assert.ok(events.some((e) => e.type === "turn-completed"));

  const assistant = { ...first.message, role: "assistant" };
  const second = await collect(await send(transport, chatId, [hello, assistant, userMessage("again")]));
  assert.equal(textOf(second.message), echo("again"), "only the second reply");
  assert.equal(calls.start, 0);
  assert.equal(appends(await requestLog(server.url, chatId)).length, 1, "the browser appended turn 2 only");
});

scenario("headStart to a run parked for its deployment: the handler says so, and the reply comes once it lands", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("head-start-pending");
  const headStart = `${server.url}/api/chat/head-start`;
  const { transport, events } = makeTransport(impl, server.url, { headStart });
  await setFaults(server.url, chatId, { pendingVersion: true });
  const reader = (await send(transport, chatId, [userMessage("parked")])).getReader();
  const sources = () => events.filter((e) => e.type === "run-pending-version").map((e) => e.source);
  assert.deepEqual(sources(), ["head-start"]);
  await setFaults(server.url, chatId, { pendingVersion: false });
  const chunks = await readUntil(reader, () => false);
  assert.equal(chunks.filter((c) => c.type === "text-delta").map((c) => c.delta).join(""), echo("parked"));
  assert.deepEqual(sources(), ["head-start"]);
});

scenario("watch: reconnectToStream follows later turns on one stream", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("watch");
  const sender = makeTransport(impl, server.url);
  await collect(await send(sender.transport, chatId, [userMessage("first")]));

  // Another device with the session state only.
  const watcher = makeTransport(impl, server.url, {
    watch: true,
    sessions: { [chatId]: structuredClone(sender.persisted[chatId]) },
  });
  const stream = await watcher.transport.reconnectToStream({ chatId });
  assert.ok(stream, "a watcher gets a stream with no turn in flight");
  const reader = stream.getReader();

  for (const text of ["second", "third"]) {
    await collect(await send(sender.transport, chatId, [userMessage(text)]));
  }
  let finishes = 0;
  const chunks = await readUntil(reader, (c) => c.type === "finish" && ++finishes === 2);
  const text = chunks
    .filter((c) => c.type === "text-delta")
    .map((c) => c.delta)
    .join("");
  assert.equal(text, echo("second") + echo("third"));
  assert.equal(chunks.filter((c) => c.type === "start").length, 2);
  // The second boundary may come in a batch after the second `finish` was read.
  const completed = () => watcher.events.filter((e) => e.type === "turn-completed").length;
  await eventually(() => completed() === 2, 5_000).catch(() => assert.equal(completed(), 2));
  await reader.cancel();
});
