// Stop, continuation runs, upgrades, closed and stale sessions, for every transport
// (transports.mjs).
import assert from "node:assert/strict";
import { after, before } from "node:test";
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
  readUntil,
  requestLog,
  scenario,
  send,
  setFaults,
  sleep,
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

scenario("stopGeneration mid-turn, then a new turn", { timeout: 20_000 }, async (impl) => {
  const chatId = newChatId("stop");
  const { transport } = makeTransport(impl, server.url);
  const u1 = userMessage("slow please");
  const reader = (await send(transport, chatId, [u1])).getReader();
  let seen = 0;
  const partial = await readUntil(reader, (c) => isDelta(c) && ++seen === 3);
  assert.equal(await transport.stopGeneration(chatId), true);
  for (;;) if ((await reader.read()).done) break;

  await eventually(async () => !(await chatState(server.url, chatId)).currentTurnActive);
  // Code written for the JS transport calls its W12 escape after a stop; here it must change
  // nothing. (Called on the official transport at this point, its escape let the stopped turn's
  // `abort` chunk into the next turn in 3 of 5 runs, so it is called on ours only.)
  if (impl.name === "wasm") transport.clearSupersedeGate(chatId);
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

scenario("a run that ended is continued by the next message", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("continue");
  const { transport } = makeTransport(impl, server.url);
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

scenario("upgrade-required mid-turn is invisible to the UI", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("upgrade");
  const { transport } = makeTransport(impl, server.url);
  await transport.preload(chatId);
  await admin(server.url, `/chats/${chatId}/upgrade`, { method: "POST" });
  const { message, chunks } = await collect(await send(transport, chatId, [userMessage("hello v2")]));
  assert.equal(textOf(message), echo("hello v2"));
  assert.ok(chunks.every((c) => !String(c.type).startsWith("trigger")));
  assert.equal((await chatState(server.url, chatId)).runs, 2);
});

/** The sources of the `run-pending-version` events seen so far. */
const pendingSources = (events) => events.filter((e) => e.type === "run-pending-version").map((e) => e.source);

scenario("a run parked for its deployment: start and send say so, and the reply comes once it lands", { timeout: 20_000 }, async (impl) => {
  const chatId = newChatId("pending-version");
  const { transport, events } = makeTransport(impl, server.url);
  await setFaults(server.url, chatId, { pendingVersion: true });
  const reader = (await send(transport, chatId, [userMessage("after the deploy")])).getReader();
  assert.deepEqual(pendingSources(events), ["start", "send"], "learned from startSession, then from the append");
  assert.ok(events.every((e) => e.type !== "run-pending-version" || e.chatId === chatId));
  // Parked: the message waits on `.in`, nothing is answered.
  await sleep(600);
  const parked = await chatState(server.url, chatId);
  assert.equal(parked.turns, 0);
  assert.deepEqual(parked.inRecords.map((r) => r.consumed), [false]);

  await setFaults(server.url, chatId, { pendingVersion: false }); // the deployment lands
  const chunks = await readUntil(reader, () => false);
  assert.equal(chunks.filter(isDelta).map((c) => c.delta).join(""), echo("after the deploy"));
  // A send after it lands says nothing more.
  await collect(await send(transport, chatId, [userMessage("and now")]));
  assert.deepEqual(pendingSources(events), ["start", "send"]);
});

scenario("an upgrade whose new run waits for its deployment: pending-version on .out, then the reply", { timeout: 20_000 }, async (impl) => {
  const chatId = newChatId("pending-upgrade");
  const { transport, events } = makeTransport(impl, server.url);
  await transport.preload(chatId);
  await admin(server.url, `/chats/${chatId}/upgrade`, { method: "POST", body: { pendingVersion: true } });
  const reader = (await send(transport, chatId, [userMessage("hello v3")])).getReader();
  await eventually(() => pendingSources(events).includes("upgrade")).catch(() =>
    assert.fail(`no upgrade event: ${JSON.stringify(pendingSources(events))}`),
  );
  // The append may be answered after the handover parked the new run: then it says so too.
  assert.ok(["upgrade", "send,upgrade"].includes(pendingSources(events).join()), JSON.stringify(pendingSources(events)));
  await setFaults(server.url, chatId, { pendingVersion: false });
  const chunks = await readUntil(reader, () => false);
  assert.equal(chunks.filter(isDelta).map((c) => c.delta).join(""), echo("hello v3"));
  assert.ok(chunks.every((c) => !String(c.type).startsWith("trigger")));
  assert.equal((await chatState(server.url, chatId)).runs, 2);
});

scenario("a closed session refuses sends with session_closed", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("closed");
  const { transport, events } = makeTransport(impl, server.url);
  await collect(await send(transport, chatId, [userMessage("hi")]));
  await closeSession(server.url, chatId, "user-ended");

  await assert.rejects(send(transport, chatId, [userMessage("anyone?")]), (err) => {
    assert.equal(err.status, 409);
    assert.equal(err.code, "session_closed");
    assert.equal(err.closedReason, "user-ended");
    if (impl.isError) {
      assert.ok(impl.isError(err), "isTriggerChatError knows the package's error");
      // Node's network errors carry a string code too; they are not this package's.
      assert.ok(!impl.isError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })));
    }
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

scenario("the agent closing the session ends the stream with session-closed", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("goodbye");
  const { transport, events } = makeTransport(impl, server.url);
  const { message } = await collect(await send(transport, chatId, [userMessage("goodbye")]));
  assert.equal(textOf(message), "Goodbye! This conversation is now closed.");
  const closed = events.find((e) => e.type === "session-closed");
  assert.equal(closed?.source, "stream");
  assert.equal(closed?.reason, "agent-closed");
  assert.equal(transport.sessionStatus(chatId), "closed");
});

scenario("a stale persisted session is recreated through startSession", { timeout: 15_000 }, async (impl) => {
  const chatId = newChatId("stale");
  const { transport, calls } = makeTransport(impl, server.url, {
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
