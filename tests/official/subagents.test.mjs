// Sub-agents forwarded with `chat.forwardSubAgent` (transient `data-subagent` parts) and each
// package's `createSubAgentMessages`, for every transport (transports.mjs): the emulator's
// `research <topic>` turn live, a resume in the middle of it, and the store's handling of
// replayed, out-of-order, foreign and malformed parts.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { readUIMessageStream } from "ai";
import {
  eventually,
  makeTransport,
  newChatId,
  readUntil,
  scenario,
  send,
  sleep,
  startServer,
  textOf,
  userMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** JSON equality: the AI SDK leaves `undefined` fields on what it builds. */
const plain = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
const THROTTLE_MS = 20;
/** Long enough for the store's next update after its input stopped (`ai` is loaded by then). */
const settle = () => sleep(THROTTLE_MS * 5);
/** Waits until the store's message for `toolCallId` equals `expected` (compared as JSON). */
const rebuilt = (store, toolCallId, expected) =>
  eventually(() => isDeepStrictEqual(plain(store.get(toolCallId)), expected)).catch(() => {
    assert.deepEqual(plain(store.get(toolCallId)), expected);
  });

const batch = (toolCallId, seq, chunks) => ({ type: "data-subagent", transient: true, data: { toolCallId, seq, chunks } });

/** A sub-agent reply in batches: `start` … one delta per word … `finish`. */
function reply(toolCallId, messageId, words) {
  const text = { id: `t-${messageId}` };
  return [
    batch(toolCallId, 0, [{ type: "start", messageId }, { type: "start-step" }, { type: "text-start", ...text }]),
    ...words.map((delta, i) => batch(toolCallId, i + 1, [{ type: "text-delta", ...text, delta }])),
    batch(toolCallId, words.length + 1, [{ type: "text-end", ...text }, { type: "finish-step" }, { type: "finish" }]),
  ];
}

const finished = (id, text) => ({
  id,
  role: "assistant",
  parts: [{ type: "step-start" }, { type: "text", text, state: "done" }],
});

scenario("sub-agents: a research turn's forwarded chunks rebuild the tool's output, live", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("subagent");
  const { transport } = makeTransport(impl, server.url);
  let changes = 0;
  const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS, onChange: () => changes++ });
  const reader = (await send(transport, chatId, [userMessage("research wasm size")])).getReader();

  const head = await readUntil(reader, (c) => c.type === "data-subagent" && c.data.seq === 4);
  const call = head.find((c) => c.type === "tool-input-available")?.toolCallId;
  assert.equal(typeof call, "string", "the tool call came first");
  head.forEach((c) => store.onData(c));
  // The first part loads `ai`; then updates follow within the throttle.
  const partial = await eventually(() => store.get(call)).catch(() => assert.fail("no message while the sub-agent runs"));
  assert.equal(partial.parts.find((p) => p.type === "text")?.state, "streaming");
  assert.ok(partial.parts.length > 0 && textOf(partial).startsWith("Report on wasm size: "), textOf(partial));

  const rest = await readUntil(reader, () => false);
  rest.forEach((c) => store.onData(c));
  const output = rest.find((c) => c.type === "tool-output-available" && c.toolCallId === call)?.output;
  assert.ok(output, "the tool's output: the sub-agent's final message");
  await rebuilt(store, call, output);
  assert.ok(changes >= 2, `onChange ran for the partial and the final message (${changes})`);
  const transients = [...head, ...rest].filter((c) => c.type === "data-subagent");
  assert.deepEqual(transients.map((c) => c.data.seq), [...Array(12).keys()]);
  store.dispose();
});

scenario("sub-agents: a stream resumed mid-turn replays batches the store skips", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("subagent-resume");
  const first = makeTransport(impl, server.url);
  const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
  const reader = (await send(first.transport, chatId, [userMessage("research resumes")])).getReader();
  const head = await readUntil(reader, (c) => c.type === "data-subagent" && c.data.seq === 3);
  head.forEach((c) => store.onData(c));
  const call = head.find((c) => c.type === "tool-input-available").toolCallId;

  // A reloaded page: the session from the app's store, a fresh transport, and two stores — the
  // one that saw the start (a resume in the same page) and a new one (the reloaded page's).
  const second = makeTransport(impl, server.url, { sessions: { [chatId]: structuredClone(first.persisted[chatId]) } });
  const fresh = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
  const resumed = await second.transport.reconnectToStream({ chatId });
  assert.ok(resumed, "the turn is still streaming");
  const replay = await readUntil(resumed.getReader(), () => false);
  for (const chunk of replay) {
    store.onData(chunk);
    fresh.onData(chunk);
  }
  const output = replay.find((c) => c.type === "tool-output-available")?.output;
  assert.ok(output, "the resumed stream reached the tool's output");
  await rebuilt(store, call, output); // no batch applied twice
  await rebuilt(fresh, call, output); // the reloaded page rebuilt it from the replay
  await reader.cancel();
  store.dispose();
  fresh.dispose();
});

scenario("sub-agents: replayed, early, foreign and malformed parts are skipped", { timeout: 5_000 }, async (impl) => {
  const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
  const a = reply("call_a", "sub_a", ["one ", "two ", "three"]);
  const b = reply("call_b", "sub_b", ["bee"]);
  const feed = [
    a[0], a[1], a[0], a[1], // a replay after a reconnect
    a[3], // ahead of a missing batch: cannot be applied
    { type: "data-other", data: { toolCallId: "call_a", seq: 2, chunks: [] } },
    { type: "data-subagent", data: null },
    { type: "data-subagent", data: { toolCallId: 7, seq: 0, chunks: [] } },
    { type: "data-subagent", data: { toolCallId: "call_c", seq: 0, chunks: "nope" } },
    { type: "text-delta", id: "x", delta: "y" },
    b[0], a[2], b[1], a[3], b[2], a[4], a[4],
  ];
  for (const part of feed) store.onData(part);
  await rebuilt(store, "call_a", finished("sub_a", "one two three"));
  await rebuilt(store, "call_b", finished("sub_b", "bee"));
  await settle();
  assert.equal(store.get("call_c"), undefined);
  assert.equal(store.get("unknown"), undefined);
  // The parts passed in are the caller's: nothing is written onto them.
  assert.deepEqual(a[0].data.chunks[0], { type: "start", messageId: "sub_a" });
  store.dispose();
  assert.equal(store.get("call_a"), undefined, "dispose drops the messages");
});

scenario("sub-agents: a sub-agent's own tool calls, and a malformed chunk keeps what came before", { timeout: 5_000 }, async (impl) => {
  const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
  const tool = { toolCallId: "inner_1", toolName: "search" };
  store.onData(batch("call_t", 0, [{ type: "start", messageId: "sub_t" }, { type: "start-step" }]));
  store.onData(batch("call_t", 1, [
    { type: "tool-input-start", ...tool },
    { type: "tool-input-available", ...tool, input: { q: "wasm" } },
    { type: "tool-output-available", toolCallId: "inner_1", output: { hits: 3 } },
    { type: "finish-step" },
  ]));
  store.onData(batch("call_t", 2, [{ type: "finish" }]));

  store.onData(batch("call_m", 0, [{ type: "start", messageId: "sub_m" }, { type: "text-start", id: "t" }, { type: "text-delta", id: "t", delta: "kept" }]));
  store.onData(batch("call_m", 1, [{ type: "text-delta", id: "never-started", delta: "bad" }]));
  store.onData(batch("call_m", 2, [{ type: "text-delta", id: "t", delta: " lost" }, { type: "finish" }]));
  await eventually(() => store.get("call_t") && store.get("call_m"));
  await settle();

  const t = plain(store.get("call_t"));
  assert.equal(t.id, "sub_t");
  const part = t.parts.find((p) => p.type === "tool-search");
  assert.deepEqual(
    { state: part?.state, input: part?.input, output: part?.output },
    { state: "output-available", input: { q: "wasm" }, output: { hits: 3 } },
  );
  const m = plain(store.get("call_m"));
  assert.deepEqual(m.parts, [{ type: "text", text: "kept", state: "streaming" }]);
  store.dispose();
});

scenario("sub-agents: what follows `finish` in the batch that carries it still counts", { timeout: 5_000 }, async (impl) => {
  // Two segments in one batch (an agent that merged two UI message streams without
  // `sendFinish: false`): the message is what the AI SDK's reducer makes of all of it.
  const chunks = [
    { type: "start", messageId: "sub_f" },
    { type: "text-start", id: "a" },
    { type: "text-delta", id: "a", delta: "first" },
    { type: "text-end", id: "a" },
    { type: "finish" },
    { type: "text-start", id: "b" },
    { type: "text-delta", id: "b", delta: "second" },
    { type: "text-end", id: "b" },
    { type: "finish" },
  ];
  let expected;
  const source = new ReadableStream({
    start(controller) {
      chunks.forEach((c) => controller.enqueue({ ...c }));
      controller.close();
    },
  });
  for await (const message of readUIMessageStream({ stream: source })) expected = plain(message);
  assert.equal(textOf(expected), "firstsecond", "the reducer keeps both segments");

  const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
  store.onData(batch("call_f", 0, chunks));
  await rebuilt(store, "call_f", expected);
  store.dispose();
});

scenario(
  "sub-agents: what an agent writes after `finish`, in a later batch, still counts",
  { timeout: 5_000 },
  async (impl) => {
    // The SDK's `onBeforeTurnComplete` writes data parts after the response (and its `finish`).
    const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
    const [first, ...rest] = reply("call_s", "sub_s", ["done"]);
    for (const part of [first, ...rest]) store.onData(part);
    await rebuilt(store, "call_s", finished("sub_s", "done"));
    store.onData(batch("call_s", rest.length + 1, [{ type: "data-usage-summary", data: { tokens: 12 } }]));
    await eventually(() => plain(store.get("call_s"))?.parts.some((p) => p.type === "data-usage-summary"), 2_000).catch(
      () => assert.fail(`no usage part: ${JSON.stringify(plain(store.get("call_s")))}`),
    );
    store.dispose();
  },
);

scenario(
  "sub-agents: a store that lives across many chats keeps the latest 64 finished sub-agents",
  { timeout: 10_000, todo: { official: "the SDK store keeps every sub-agent for as long as it lives" } },
  async (impl) => {
    const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
    for (let i = 0; i < 70; i++) for (const part of reply(`call_${i}`, `sub_${i}`, ["w"])) store.onData(part);
    // One still running, begun before the others finished: it is never dropped for them.
    store.onData(batch("call_open", 0, [{ type: "start", messageId: "sub_open" }, { type: "text-start", id: "o" }]));
    for (let i = 70; i < 75; i++) for (const part of reply(`call_${i}`, `sub_${i}`, ["w"])) store.onData(part);
    await rebuilt(store, "call_74", finished("sub_74", "w"));
    await eventually(() => store.get("call_open") !== undefined);
    assert.equal(store.get("call_0"), undefined, "the oldest finished one is gone");
    assert.equal(store.get("call_10"), undefined);
    assert.deepEqual(plain(store.get("call_11")), finished("sub_11", "w"), "the latest 64 are kept");
    store.dispose();
  },
);

scenario(
  "sub-agents: one that was stopped counts as finished, and a long-lived store lets it go",
  { timeout: 10_000, todo: { official: "the SDK store keeps every sub-agent for as long as it lives" } },
  async (impl) => {
    const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
    // Every sub-agent ends without `finish`: it was stopped (`abort`).
    const stopped = (i) => {
      const [first, word] = reply(`call_${i}`, `sub_${i}`, ["w"]);
      return [first, word, batch(`call_${i}`, 2, [{ type: "text-end", id: `t-sub_${i}` }, { type: "abort" }])];
    };
    for (let i = 0; i < 70; i++) for (const part of stopped(i)) store.onData(part);
    await eventually(() => textOf(store.get("call_69") ?? { parts: [] }) === "w");
    assert.equal(store.get("call_0"), undefined, "the oldest ended one is gone");
    assert.equal(store.get("call_5"), undefined);
    assert.equal(textOf(store.get("call_6")), "w", "the latest 64 are kept");
    store.dispose();
  },
);

scenario(
  "sub-agents: ones that never end (their parent was stopped) are let go past 64, the one fed longest ago first",
  { timeout: 10_000, todo: { official: "the SDK store keeps every sub-agent for as long as it lives" } },
  async (impl) => {
    const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
    const begun = (id) =>
      batch(id, 0, [{ type: "start", messageId: `sub_${id}` }, { type: "text-start", id: `t-${id}` }, { type: "text-delta", id: `t-${id}`, delta: "w" }]);
    // One runs on through all of them, fed every ten; seventy others are stopped mid-way.
    store.onData(begun("call_live"));
    let next = 1;
    for (let i = 0; i < 70; i++) {
      store.onData(begun(`call_${i}`));
      if (i % 10 === 0) store.onData(batch("call_live", next++, [{ type: "text-delta", id: "t-call_live", delta: "w" }]));
    }
    await eventually(() => textOf(store.get("call_69") ?? { parts: [] }) === "w");
    assert.equal(store.get("call_0"), undefined, "the one fed longest ago is gone");
    assert.equal(store.get("call_6"), undefined);
    assert.equal(textOf(store.get("call_7")), "w", "64 running ones are kept");
    assert.equal(textOf(store.get("call_live")), "w".repeat(next), "the one still fed stays");
    store.dispose();
  },
);

scenario(
  "sub-agents: the ones that finished first go first, not the ones that started first; an error chunk is no end",
  { timeout: 10_000, todo: { official: "the SDK store keeps every sub-agent for as long as it lives" } },
  async (impl) => {
    const store = impl.createSubAgentMessages({ throttleMs: THROTTLE_MS });
    const text = (id) => ({ type: "text-start", id: `t-${id}` });
    // Two slow ones start first; one of them reports an error from a part of its work and goes on.
    store.onData(batch("call_slow", 0, [{ type: "start", messageId: "sub_slow" }, text("slow"), { type: "text-delta", id: "t-slow", delta: "a" }]));
    store.onData(batch("call_err", 0, [{ type: "start", messageId: "sub_err" }, text("err"), { type: "text-delta", id: "t-err", delta: "a" }, { type: "error", errorText: "one source failed" }]));
    for (let i = 0; i < 64; i++) for (const part of reply(`call_${i}`, `sub_${i}`, ["w"])) store.onData(part);
    store.onData(batch("call_slow", 1, [{ type: "text-delta", id: "t-slow", delta: "b" }, { type: "text-end", id: "t-slow" }, { type: "finish" }]));
    store.onData(batch("call_err", 1, [{ type: "text-delta", id: "t-err", delta: "b" }, { type: "text-end", id: "t-err" }, { type: "finish" }]));
    await eventually(() => textOf(store.get("call_err") ?? { parts: [] }) === "ab").catch(() =>
      assert.fail(`the one that reported an error went on: ${JSON.stringify(plain(store.get("call_err")))}`),
    );
    assert.equal(textOf(store.get("call_slow")), "ab", "the one that finished last is kept");
    assert.equal(store.get("call_0"), undefined, "the two that finished first are gone");
    assert.equal(store.get("call_1"), undefined);
    assert.equal(textOf(store.get("call_2")), "w");
    store.dispose();
  },
);

scenario("sub-agents: onChange runs once per throttle window, and a throwing listener is survived", {
  timeout: 5_000,
  // The official store calls onChange inside its async rebuild without a catch: the exception
  // becomes an unhandled rejection (it would fail this file), and the store still works.
  skip: { official: "onChange's exception escapes as an unhandled rejection" },
}, async (impl) => {
  let calls = 0;
  const store = impl.createSubAgentMessages({
    throttleMs: 150,
    onChange: () => {
      calls++;
      throw new Error("listener bug");
    },
  });
  const parts = reply("call_x", "sub_x", ["a ", "b ", "c ", "d ", "e"]);
  for (const part of parts.slice(0, 4)) store.onData(part);
  await eventually(() => calls >= 1); // the first part loads `ai`
  await sleep(400);
  assert.equal(calls, 1, "one update for a burst of batches");
  assert.equal(textOf(store.get("call_x")), "a b c ");
  for (const part of parts.slice(4)) store.onData(part);
  await eventually(() => calls >= 2);
  await sleep(200); // and no third
  assert.equal(calls, 2);
  assert.deepEqual(plain(store.get("call_x")), finished("sub_x", "a b c d e"));
  store.dispose();
  store.onData(reply("call_y", "sub_y", ["z"])[0]);
  await sleep(300);
  assert.equal(calls, 2, "nothing after dispose");
  assert.equal(store.get("call_y"), undefined);
});
