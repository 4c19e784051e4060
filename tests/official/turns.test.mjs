// Ordinary conversations through the official transport: turns, actions, tools, metadata.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { uiMessageChunkSchema } from "ai";
import {
  appends,
  chatState,
  collect,
  echo,
  eventually,
  makeTransport,
  newChatId,
  outs,
  readUntil,
  requestLog,
  send,
  startServer,
  textOf,
  userMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test("a basic turn streams the echo and ends at turn-complete", { timeout: 15_000 }, async () => {
  const chatId = newChatId("basic");
  const { transport, events, persisted, calls } = makeTransport(server.url);
  const { message, chunks } = await collect(await send(transport, chatId, [userMessage("hello there")]));

  assert.equal(textOf(message), echo("hello there"));
  assert.equal(chunks[0].type, "start");
  assert.match(chunks[0].messageId, /^msg_/, "server-generated message id");
  assert.equal(message.id, chunks[0].messageId);
  assert.equal(chunks.at(-1).type, "finish");
  assert.equal(calls.start, 1);
  const types = events.map((e) => e.type);
  for (const t of ["message-sent", "stream-connected", "first-chunk", "turn-completed"]) {
    assert.ok(types.includes(t), `event ${t} in ${types}`);
  }
  assert.equal(persisted[chatId].isStreaming, false);

  // What went over the wire: one append with an X-Part-Id and the token from /start.
  const log = await requestLog(server.url, chatId);
  const [append] = appends(log);
  assert.ok(append.headers["x-part-id"]);
  assert.equal(JSON.parse(append.body).kind, "message");
  const start = log.find((r) => r.path.endsWith("/start"));
  assert.equal(start.status, 200);
  assert.equal(outs(log)[0].headers.accept, "text/event-stream");
});

test("two turns: the second stream carries only the second reply", { timeout: 15_000 }, async () => {
  const chatId = newChatId("two");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("first question");
  const r1 = await collect(await send(transport, chatId, [u1]));
  assert.equal(textOf(r1.message), echo("first question"));
  const u2 = userMessage("second question");
  const r2 = await collect(await send(transport, chatId, [u1, r1.message, u2]));
  assert.equal(textOf(r2.message), echo("second question"));
  assert.notEqual(r2.message.id, r1.message.id);

  const state = await chatState(server.url, chatId);
  assert.equal(state.turns, 2);
  assert.equal(state.inRecords.length, 2);
  // The second subscription resumed after the first turn's boundary.
  const log = await requestLog(server.url, chatId);
  const second = outs(log)[1];
  assert.ok(Number(second.headers["last-event-id"]) >= 0);
  // Only the new message was shipped (one message per record).
  assert.equal(JSON.parse(appends(log)[1].body).payload.message.id, u2.id);
});

test("sendAction answers with a short turn and settles", { timeout: 15_000 }, async () => {
  const chatId = newChatId("action");
  const { transport } = makeTransport(server.url);
  await collect(await send(transport, chatId, [userMessage("hi")]));
  let settled;
  const stream = await transport.sendAction(chatId, { type: "undo" }, { onSettled: (s) => (settled = s) });
  const { message } = await collect(stream);
  assert.equal(textOf(message), 'Action received: {"type":"undo"}');
  assert.ok(settled, "onSettled fired");
  assert.equal(settled.inputSeq, 1);
});

test("tool approval round trip: approved", { timeout: 15_000 }, async () => {
  const chatId = newChatId("approve");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("What's the weather in Oslo?");
  const first = await collect(await send(transport, chatId, [u1]));
  const tool = first.message.parts.find((p) => p.type === "tool-getWeather");
  assert.equal(tool.state, "approval-requested");
  assert.deepEqual(tool.input, { city: "Oslo" });

  const answered = structuredClone(first.message);
  const part = answered.parts.find((p) => p.type === "tool-getWeather");
  part.state = "approval-responded";
  part.approval = { id: tool.approval.id, approved: true };
  const second = await collect(await send(transport, chatId, [u1, answered]), { message: answered });
  assert.equal(second.message.id, first.message.id, "the same assistant message continues");
  const done = second.message.parts.find((p) => p.type === "tool-getWeather");
  assert.equal(done.state, "output-available");
  assert.deepEqual(done.output, { city: "Oslo", forecast: "sunny", temperatureC: 21 });
  assert.equal(textOf(second.message), "The weather in Oslo is sunny, 21°C.");

  // The transport shipped the slim approval message.
  const sent = JSON.parse(appends(await requestLog(server.url, chatId))[1].body).payload.message;
  assert.equal(sent.role, "assistant");
  assert.deepEqual(sent.parts.map((p) => p.state), ["approval-responded"]);
});

test("tool approval round trip: denied", { timeout: 15_000 }, async () => {
  const chatId = newChatId("deny");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("weather please");
  const first = await collect(await send(transport, chatId, [u1]));
  const answered = structuredClone(first.message);
  const part = answered.parts.find((p) => p.type === "tool-getWeather");
  part.state = "approval-responded";
  part.approval = { id: part.approval.id, approved: false };
  const second = await collect(await send(transport, chatId, [u1, answered]), { message: answered });
  assert.ok(second.chunks.some((c) => c.type === "tool-output-denied"));
  assert.equal(second.message.parts.find((p) => p.type === "tool-getWeather").state, "output-denied");
  assert.equal(textOf(second.message), "Okay, I won't look up the weather.");
});

test("clientData and per-call metadata reach the agent", { timeout: 15_000 }, async () => {
  const chatId = newChatId("whoami");
  const { transport } = makeTransport(server.url, { clientData: { userId: "user-7" } });
  const { message } = await collect(
    await send(transport, chatId, [userMessage("whoami")], { metadata: { locale: "en" } }),
  );
  assert.equal(
    textOf(message),
    'whoami: metadata={"userId":"user-7","locale":"en"} clientData={"userId":"user-7"}',
  );
  assert.deepEqual(message.metadata, { metadata: { userId: "user-7", locale: "en" } });
});

test("regenerate-message re-streams the last answer", { timeout: 15_000 }, async () => {
  const chatId = newChatId("regen");
  const { transport } = makeTransport(server.url);
  const u1 = userMessage("tell me");
  const r1 = await collect(await send(transport, chatId, [u1]));
  const r2 = await collect(
    await transport.sendMessages({
      trigger: "regenerate-message",
      chatId,
      messageId: r1.message.id,
      messages: [u1],
      abortSignal: undefined,
    }),
  );
  assert.equal(textOf(r2.message), `Regenerated: ${echo("tell me")}`);
  const body = JSON.parse(appends(await requestLog(server.url, chatId))[1].body);
  assert.equal(body.payload.trigger, "regenerate-message");
  assert.equal(body.payload.message, undefined);
});

test("an error chunk reaches the UI stream", { timeout: 15_000 }, async () => {
  const chatId = newChatId("error");
  const { transport } = makeTransport(server.url);
  const errors = [];
  const { chunks } = await collect(await send(transport, chatId, [userMessage("please error")]), {
    onError: (e) => errors.push(e),
  });
  assert.deepEqual(
    chunks.map((c) => c.type),
    ["start", "error"],
  );
  assert.equal(errors[0]?.message, "Scripted error: you asked for an error.");
});

test("a long stream arrives complete and in order", { timeout: 30_000 }, async () => {
  const chatId = newChatId("stream");
  const { transport } = makeTransport(server.url);
  const { message } = await collect(await send(transport, chatId, [userMessage("stream 3000")]));
  const expected = Array.from({ length: 3000 }, (_, i) => `${i} `).join("");
  assert.equal(textOf(message), expected);
});

/** Every `.out` record of a chat after `lastEventId`, read raw (settled peek: returns at once). */
async function rawRecords(chatId, token, lastEventId) {
  const res = await fetch(`${server.url}/realtime/v1/sessions/${chatId}/out`, {
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: "text/event-stream",
      "X-Peek-Settled": "1",
      ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
    },
  });
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.includes("event: batch"))
    .flatMap((block) => JSON.parse(block.split("\n").find((l) => l.startsWith("data: ")).slice(6)).records);
}

test("every chunk the scripted agent writes is a valid UIMessageChunk (ai's own schema)", { timeout: 30_000 }, async () => {
  const chatId = newChatId("shapes");
  const { transport, persisted } = makeTransport(server.url, { clientData: { userId: "u" } });
  const seen = [];
  const turn = async (stream, message) => {
    const r = await collect(stream, { message, onError: () => {} });
    seen.push(...r.chunks);
    return r;
  };
  const u = userMessage("weather in Rome");
  const asked = await turn(await send(transport, chatId, [u]));
  for (const approved of [true, false]) {
    const reply = structuredClone(asked.message);
    const part = reply.parts.find((p) => p.type === "tool-getWeather");
    part.state = "approval-responded";
    part.approval = { id: part.approval.id, approved };
    await turn(await send(transport, chatId, [u, reply]), reply);
  }
  for (const text of ["hello", "please error", "whoami", "stream 20 size 3"]) {
    await turn(await send(transport, chatId, [userMessage(text)]));
  }
  await turn(await transport.sendAction(chatId, { type: "undo" }));
  await turn(
    await transport.sendMessages({ trigger: "regenerate-message", chatId, messageId: undefined, messages: [u], abortSignal: undefined }),
  );
  // A stopped turn. Its `abort` chunk reaches this reader only if the transport read it before
  // the stop's append returned; otherwise it is still on the wire after the persisted cursor.
  const reader = (await send(transport, chatId, [userMessage("slow")])).getReader();
  await readUntil(reader, (c) => c.type === "text-delta");
  await transport.stopGeneration(chatId);
  const wire = await readUntil(reader, () => false);
  await eventually(async () => !(await chatState(server.url, chatId)).currentTurnActive);
  const session = persisted[chatId];
  const rest = await rawRecords(chatId, session.publicAccessToken, session.lastEventId);
  wire.push(...rest.filter((r) => !r.headers?.length).map((r) => JSON.parse(r.body).data));
  assert.ok(wire.some((c) => c.type === "abort"), JSON.stringify(wire));
  seen.push(...wire);

  const schema = uiMessageChunkSchema();
  const types = new Set();
  for (const chunk of seen) {
    const result = await schema.validate(chunk);
    assert.ok(result.success, `invalid chunk ${JSON.stringify(chunk)}: ${result.error?.message}`);
    types.add(chunk.type);
  }
  for (const t of ["start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish",
    "tool-input-start", "tool-input-delta", "tool-input-available", "tool-approval-request",
    "tool-output-available", "tool-output-denied", "error", "abort"]) {
    assert.ok(types.has(t), `covered ${t}`);
  }
});
