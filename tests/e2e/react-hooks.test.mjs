// The React hooks under StrictMode with React's development build (double render, effects run
// twice on mount), through the harness in tests/e2e/harness (built by tests/e2e/run into
// target/e2e/harness-dist). What a user would notice: a transport disposed by StrictMode's
// simulated unmount (sends break), options that lag one render behind (W27), a leak on unmount.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OUT_DIR, SLOW_PROMPT, echo, eventually, launchBrowser, newChatId, serve, slowProgress, slowReply } from "./helpers.mjs";

let browser;
let server;
before(async () => {
  server = await serve(join(OUT_DIR, "harness-dist"));
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openHarness() {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  page.pageErrors = errors;
  await page.goto(server.url);
  await page.waitForFunction(() => typeof window.harness === "object");
  return page;
}

const lastText = async (page) => (await page.evaluate(() => harness.texts())).at(-1) ?? "";
// How far a slow reply got, from a "role: text" line.
const progress = (line) => slowProgress(line.replace(/^\w+: /, ""));

test("useTriggerChatTransport survives StrictMode, keeps options live and disposes on unmount", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("hooks");
  await page.evaluate((id) => harness.mount(id), chatId);
  await page.waitForTimeout(100); // StrictMode's unmount/remount and any deferred dispose

  let info = await page.evaluate(() => harness.info());
  assert.ok(info.renders >= 2, `React's development build double-rendered (renders: ${info.renders})`);
  assert.equal(info.currentDisposed, 0, "StrictMode's simulated unmount did not dispose the transport");

  await page.evaluate(() => harness.send("hello"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: hello", { message: "the echo" });

  // clientData changes and a send happens in a layout effect of that same render, before any
  // useEffect runs: the agent sees the new value.
  await page.evaluate(() => harness.update({ clientData: { v: 2 }, sendInLayoutEffect: "whoami" }));
  const whoami = await eventually(async () => {
    const text = await lastText(page);
    return text.startsWith("assistant: whoami") && text;
  }, { message: "the whoami answer" });
  assert.match(whoami, /metadata=\{"v":2\}/, "the send used the clientData of the render that preceded it");

  // A new onEvent function: the next events go to it, not the old one.
  await page.evaluate(() => harness.update({ onEventTag: "second" }));
  const before = (await page.evaluate(() => harness.events())).length;
  await page.evaluate(() => harness.send("again"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: again", { message: "echo 2" });
  const later = (await page.evaluate(() => harness.events())).slice(before);
  assert.ok(later.includes("second:turn-completed"), `events reach the new callback: ${later}`);
  assert.ok(!later.some((e) => e.startsWith("first:")), `none reach the old one: ${later}`);

  info = await page.evaluate(() => harness.info());
  assert.equal(info.transports, 1, "re-renders keep one transport");
  assert.equal(info.currentDisposed, 0);

  await page.evaluate(() => harness.unmount());
  await eventually(async () => (await page.evaluate(() => harness.info())).currentDisposed === 1, {
    message: "dispose on the real unmount",
  });
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

// The harness's own server (not E2E_URL): what reached the agent.
async function serverChat(chatId) {
  const res = await fetch(`${server.url}/__admin/chats/${encodeURIComponent(chatId)}/state`);
  assert.ok(res.ok, `admin state: ${res.status}`);
  return res.json();
}

/** Sets the faults of `chatId` at the harness's server; resolves to the response. */
const setFaults = (chatId, body) =>
  fetch(`${server.url}/__admin/chats/${encodeURIComponent(chatId)}/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

/** `chatId`'s slow replies take 8 s, not 4: room for a loaded machine to act mid-reply. */
async function slowerReplies(chatId) {
  const res = await setFaults(chatId, { slowIntervalMs: 200 });
  assert.ok(res.ok, `admin faults: ${res.status}`);
}

/** Every request of `chatId` waits `ms` at the harness's server. */
async function slowDown(chatId, ms) {
  const res = await setFaults(chatId, { latencyMs: ms });
  assert.ok(res.ok, `admin faults: ${res.status}`);
}

test("unmounting mid-reply leaves the agent running, and the next mount resumes the reply (W14)", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("unmount");
  await slowerReplies(chatId);
  await page.evaluate((id) => harness.mount(id, { resume: true }), chatId);
  await page.waitForTimeout(100); // StrictMode's unmount/remount (its chat.stop() would abort a send)
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT); // resolves at the reply's end
  await eventually(async () => progress(await lastText(page)) >= 3, { message: "the reply under way" });

  // Navigating away: the component unmounts and useChat calls chat.stop() on its way out.
  await page.evaluate(() => harness.unmount());
  await eventually(async () => (await page.evaluate(() => harness.info())).currentDisposed === 1, {
    message: "the transport disposed with its component",
  });
  let state = await serverChat(chatId);
  assert.equal(state.currentTurnActive, true, "the agent is still generating after the unmount");
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"], "no stop reached .in");

  // Coming back: a new component (and transport) resumes the reply that went on meanwhile, under
  // StrictMode too (its first resume, aborted while the transport loads, leaves the chat to the
  // second).
  await page.evaluate((id) => harness.mount(id, { resume: true }), chatId);
  await eventually(async () => (await lastText(page)) === `assistant: ${slowReply()}`, {
    message: "the whole reply after the remount",
    timeout: 30_000,
  });
  state = await serverChat(chatId);
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"], "still no stop, and one message");
  assert.equal(state.turns, 1);
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("unmounting while the message is still on its way sends it anyway, and the next mount shows the reply", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("unmount-send");
  // Every request of this chat waits 1 s at the server: the append is in flight at the unmount.
  await slowDown(chatId, 1000);
  await page.evaluate((id) => harness.mount(id, { resume: true }), chatId);
  await page.waitForTimeout(100);
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT);
  await page.waitForTimeout(300);
  await page.evaluate(() => harness.unmount());
  await eventually(async () => (await serverChat(chatId)).inRecords.length > 0, { message: "the message on .in" });
  await page.waitForTimeout(1500);
  let state = await serverChat(chatId);
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"], "the message landed and no stop followed");
  assert.equal(state.currentTurnActive, true, "the agent is answering it");

  await page.evaluate((id) => harness.mount(id, { resume: true, strict: false }), chatId);
  await eventually(async () => (await lastText(page)) === `assistant: ${slowReply()}`, {
    message: "the reply after the remount",
    timeout: 30_000,
  });
  state = await serverChat(chatId);
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"]);
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

const paneText = async (page) => (await page.evaluate(() => harness.pane())).texts.at(-1) ?? "";
const inKinds = async (chatId) => (await serverChat(chatId)).inRecords.map((r) => r.kind);

test("a shared transport: useDetachOnLeave keeps a reply going when the pane switches chats or closes; stop still stops", { timeout: 90_000 }, async () => {
  const page = await openHarness();
  const [a, b, c] = [newChatId("leave-a"), newChatId("leave-b"), newChatId("leave-c")];
  await slowerReplies(a);
  await slowerReplies(c);
  await page.evaluate((id) => harness.mountShared(id, { detach: true }), a);
  await page.waitForTimeout(100);

  // Switching the pane to another chat mid-reply: the agent goes on; switching back resumes.
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await eventually(async () => progress(await paneText(page)) >= 3, { message: "a's reply under way" });
  await page.evaluate((id) => harness.update({ chatId: id }), b);
  await page.waitForTimeout(300);
  assert.equal((await serverChat(a)).currentTurnActive, true, "a's agent still generating");
  assert.deepEqual(await inKinds(a), ["message"], "no stop for a");
  await page.evaluate((id) => harness.update({ chatId: id }), a);
  await eventually(async () => (await paneText(page)) === `assistant: ${slowReply()}`, {
    message: "a's whole reply after switching back",
    timeout: 30_000,
  });

  // Closing the pane mid-reply (the shared transport stays): the same.
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await eventually(async () => progress(await paneText(page)) >= 3, { message: "a's second reply" });
  await page.evaluate(() => harness.update({ showPane: false }));
  await page.waitForTimeout(300);
  assert.equal((await serverChat(a)).currentTurnActive, true, "still generating after the pane closed");
  assert.deepEqual(await inKinds(a), ["message", "message"], "no stop for a");
  await page.evaluate(() => harness.update({ showPane: true }));
  await eventually(async () => (await serverChat(a)).turns === 2, { message: "a's second turn completed", timeout: 30_000 });

  // Hidden by a Suspense boundary and shown again (React cleans up layout effects only): the stop
  // button still stops the agent afterwards.
  // (Without StrictMode, which re-runs the effects of content shown again and would hide a leak.)
  await page.evaluate((id) => harness.update({ chatId: id, strict: false }), c);
  await page.waitForTimeout(100);
  // Hidden mid-reply: nothing is stopped, and the pane shows the whole reply once shown again.
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await eventually(async () => progress(await paneText(page)) >= 3, { message: "c's first reply under way" });
  const cleanups = await page.evaluate(() => harness.layoutCleanups());
  await page.evaluate(() => harness.update({ suspend: true }));
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => harness.layoutCleanups()), cleanups + 1, "the boundary hid the pane");
  assert.equal((await serverChat(c)).currentTurnActive, true, "c's agent still generating while hidden");
  assert.deepEqual(await inKinds(c), ["message"], "hiding stopped nothing");
  await page.evaluate(() => harness.update({ suspend: false }));
  await eventually(async () => (await paneText(page)) === `assistant: ${slowReply()}`, {
    message: "c's whole reply once shown again",
    timeout: 30_000,
  });
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await eventually(async () => progress(await paneText(page)) >= 3, { message: "c's reply" });
  await page.evaluate(() => harness.paneStop());
  await eventually(async () => (await inKinds(c)).includes("stop"), { message: "stop reached c's .in" });

  // Without the hook, leaving mid-reply stops the agent (the JavaScript transport's behaviour).
  await page.evaluate(() => harness.update({ detach: false }));
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await eventually(async () => progress(await paneText(page)) >= 3, { message: "c's second reply" });
  await page.evaluate((id) => harness.update({ chatId: id }), b);
  await eventually(async () => (await inKinds(c)).filter((k) => k === "stop").length === 2, {
    message: "leaving without the hook stopped c",
  });
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("a shared transport: leaving while the message is on its way and coming back before the server has it shows the reply", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const [d, other] = [newChatId("back-d"), newChatId("back-other")];
  // Every request of chat d waits 1.5 s at the server: the message is still on its way when
  // the pane switches away and back.
  await slowDown(d, 1500);
  await page.evaluate((id) => harness.mountShared(id, { detach: true }), d);
  await page.waitForTimeout(100);
  await page.evaluate((text) => void harness.paneSend(text), SLOW_PROMPT);
  await page.waitForTimeout(300);
  await page.evaluate((id) => harness.update({ chatId: id }), other);
  await page.waitForTimeout(200);
  await page.evaluate((id) => harness.update({ chatId: id }), d);
  assert.deepEqual((await serverChat(d)).inRecords, [], "back before the server has the message");
  await eventually(async () => (await paneText(page)) === `assistant: ${slowReply()}`, {
    message: "the whole reply after coming back",
    timeout: 30_000,
  });
  assert.deepEqual(await inKinds(d), ["message"], "sent once, never stopped");
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("useTriggerChatTransport calls a live fetch as the class does: the browser's own fetch works", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("bare-fetch");
  await page.evaluate((id) => harness.mount(id, { bareFetch: true }), chatId);
  await page.waitForTimeout(100); // StrictMode's simulated unmount/remount
  await page.evaluate(() => harness.send("plain fetch"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: plain fetch", { message: "echo" });
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("useTriggerChatTransport keeps accessToken, startSession, fetch and onSessionChange live", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("live");
  const faults = (body) => setFaults(chatId, body);
  const callsSince = async (n) => (await page.evaluate(() => harness.calls())).slice(n);
  await page.evaluate((id) => harness.mount(id), chatId);
  await page.waitForTimeout(100);

  await page.evaluate(() => harness.send("one"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: one", { message: "echo 1" });
  const first = await callsSince(0);
  for (const name of ["startSession", "fetch", "onSessionChange"]) {
    assert.ok(first.includes(`first:${name}`), `the first render's ${name} was used: ${first}`);
  }

  // New functions; then a 401 on the next append makes the transport ask for a token.
  await page.evaluate(() => harness.update({ tag: "second" }));
  let mark = (await page.evaluate(() => harness.calls())).length;
  assert.equal((await faults({ appendFailures: { status: 401, count: 1 } })).status, 200);
  await page.evaluate(() => harness.send("two"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: two", { message: "echo 2" });
  let later = await callsSince(mark);
  for (const name of ["accessToken", "fetch", "onSessionChange"]) {
    assert.ok(later.includes(`second:${name}`), `the new ${name} was used: ${later}`);
  }
  assert.ok(!later.some((c) => c.startsWith("first:")), `no old callback was called: ${later}`);

  // And a 404 on the append makes it recreate the session with the newest startSession.
  await page.evaluate(() => harness.update({ tag: "third" }));
  mark = (await page.evaluate(() => harness.calls())).length;
  assert.equal((await faults({ appendFailures: { status: 404, count: 1 } })).status, 200);
  await page.evaluate(() => harness.send("three"));
  // startSession returns the same session (it is idempotent): its earlier turns replay from the
  // start, and none of their text may show up in this reply.
  await eventually(async () => (await lastText(page)) === "assistant: You said: three", { message: "echo 3" });
  later = await callsSince(mark);
  assert.ok(later.includes("third:startSession"), `the new startSession was used: ${later}`);
  assert.ok(!later.some((c) => /^(first|second):/.test(c)), `no old callback was called: ${later}`);

  assert.equal((await page.evaluate(() => harness.info())).transports, 1, "one transport throughout");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("useChatActions sends the action through useChat and the reply streams in", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("actions");
  await page.evaluate((id) => harness.mount(id), chatId);
  // Let StrictMode's simulated unmount/remount finish first: useChat's cleanup calls
  // chat.stop(), which aborts a request already in flight (and the transport then stops the
  // turn it started, as an aborted owning send should).
  await page.waitForTimeout(100);
  await page.evaluate(() => harness.action({ type: "ping" }));
  await eventually(async () => (await lastText(page)).includes('Action received: {"type":"ping"}'), {
    message: "the action's reply",
  });
  assert.equal(await page.evaluate(() => harness.status()), "ready");

  const state = await (await fetch(`${server.url}/__admin/chats/${chatId}/state`)).json();
  const actions = state.inRecords.filter((r) => r.body?.payload?.trigger === "action");
  assert.deepEqual(actions.map((r) => r.body.payload.action), [{ type: "ping" }]);
  // A sendMessage that throws at once rejects sendAction's promise (it is declared to return
  // one, and the JS hook's is an async function), never throws in the click handler.
  assert.equal(await page.evaluate(() => harness.throwingAction()), "called at once, rejected: refused by the app");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("a chat switch in a transition that never commits: the chat on screen keeps its actions and messages", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const [a, b] = [newChatId("on-screen"), newChatId("not-committed")];
  await page.evaluate((id) => harness.mount(id), a);
  await page.waitForTimeout(100); // StrictMode's simulated unmount/remount
  // A router's navigation to chat b renders in a transition that suspends: the screen keeps a.
  await page.evaluate((id) => harness.updateInTransition({ chatId: id, suspend: true, clientData: { v: 99 } }), b);
  await page.waitForTimeout(200);
  assert.equal((await page.evaluate(() => harness.committed())).chatId, a, "a is on screen");
  await page.evaluate(() => harness.committedAction({ type: "ping" }));
  await page.evaluate(() => harness.committedQueue("typed while b was loading"));
  await eventually(
    async () => {
      const records = (await serverChat(a)).inRecords ?? [];
      return records.some((r) => r.body?.payload?.trigger === "action") &&
        records.some((r) => JSON.stringify(r.body?.payload?.message ?? "").includes("typed while b was loading"));
    },
    { message: "both reached the chat on screen" },
  );
  // With the clientData of the committed render, not the transition's.
  const sent = (await serverChat(a)).inRecords.filter((r) => r.body?.kind === "message");
  assert.deepEqual(sent.map((r) => r.body.payload.metadata?.v), [1, 1]);
  const other = await fetch(`${server.url}/__admin/chats/${b}/state`);
  const records = other.ok ? ((await other.json()).inRecords ?? []) : [];
  assert.deepEqual(records, [], "nothing went to the chat the transition never showed");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("headStart: useChat's first turn streams through the handler, the next goes to the session", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("head-start");
  await page.evaluate((id) => harness.mount(id, { headStart: "/api/chat/head-start" }), chatId);
  await page.waitForTimeout(100); // StrictMode's simulated unmount/remount

  await page.evaluate(() => harness.send("hello"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: hello", { message: "the first echo" });
  await eventually(async () => (await page.evaluate(() => harness.status())) === "ready", { message: "ready after turn 1" });
  const calls = await page.evaluate(() => harness.calls());
  assert.ok(!calls.some((c) => c.endsWith(":startSession")), `the handler created the session: ${calls}`);
  assert.ok(calls.some((c) => c.endsWith(":onSessionChange")), `the handler's session was stored: ${calls}`);

  await page.evaluate(() => harness.send("again"));
  await eventually(async () => (await lastText(page)) === "assistant: You said: again", { message: "the second echo" });
  await eventually(async () => (await page.evaluate(() => harness.status())) === "ready", { message: "ready after turn 2" });
  assert.deepEqual(await page.evaluate(() => harness.texts()), [
    "user: hello",
    "assistant: You said: hello",
    "user: again",
    "assistant: You said: again",
  ]);
  const state = await (await fetch(`${server.url}/__admin/chats/${chatId}/state`)).json();
  const texts = state.inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text);
  assert.deepEqual(texts, ["hello", "again"], "the handler's input, then the browser's own append");
  assert.ok(!(await page.evaluate(() => harness.events())).some((e) => e.endsWith(":stream-error")));
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("useLoadTranscript loads per chat, seeds the resume cursor, and reports failures", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const a = newChatId("transcript-a");
  const b = newChatId("transcript-b");
  await page.evaluate((id) => harness.mountTranscript(id), a);
  let t = await page.evaluate(() => harness.transcript());
  assert.equal(t.isLoading, true);
  t = await eventually(async () => {
    const now = await page.evaluate(() => harness.transcript());
    return !now.isLoading && now;
  }, { message: "chat A loaded" });
  assert.deepEqual(t.texts, [`history of ${a}`]);
  assert.equal(t.nextCursor, "page-2");
  assert.deepEqual(t.loads.at(-1), { chatId: a, limit: 20 });
  // The cursor was held until the session existed, then applied.
  const session = await page.evaluate((id) => harness.transcriptSession(id), a);
  assert.equal(session.lastEventId, "41");

  // Switching chats never shows the previous chat's history.
  await page.evaluate((id) => harness.updateTranscript({ chatId: id }), b);
  t = await page.evaluate(() => harness.transcript());
  assert.equal(t.isLoading, true);
  assert.deepEqual(t.texts, []);
  t = await eventually(async () => {
    const now = await page.evaluate(() => harness.transcript());
    return !now.isLoading && now;
  }, { message: "chat B loaded" });
  assert.deepEqual(t.texts, [`history of ${b}`]);

  await page.evaluate((id) => harness.updateTranscript({ chatId: id, fail: true }), newChatId("transcript-c"));
  t = await eventually(async () => {
    const now = await page.evaluate(() => harness.transcript());
    return now.error && now;
  }, { message: "the failure" });
  assert.match(t.error, /^no transcript for \S*transcript-c-/);
  assert.equal(t.isLoading, false);
  assert.deepEqual(t.texts, []);
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

const report = (topic) =>
  `Report on ${topic}: ${Array.from({ length: 10 }, (_, i) => `finding ${i + 1}`).join(", ")}.`;

test("useSubAgentMessages shows a sub-agent while it runs, and again after a reload mid-turn", { timeout: 45_000 }, async () => {
  let page = await openHarness();
  const chatId = newChatId("subagent");
  await page.evaluate((id) => harness.mount(id), chatId);
  await page.waitForTimeout(100); // StrictMode's simulated unmount/remount

  // Not awaited: sendMessage resolves when the turn is over.
  await page.evaluate(() => void harness.send("research live view"));
  const full = report("live view");
  // While the sub-agent runs, the card shows part of its reply and the tool has no output yet.
  const running = await eventually(async () => {
    const { cards } = await page.evaluate(() => harness.subAgents());
    const card = cards[0];
    return card?.state === "input-available" && card.live.length > 0 && card.live !== full && card;
  }, { message: "a partial sub-agent message" });
  assert.ok(full.startsWith(running.live), `a prefix of the reply: ${running.live}`);
  const done = await eventually(async () => {
    const { cards } = await page.evaluate(() => harness.subAgents());
    return cards[0]?.state === "output-available" && cards[0].live === full && cards[0];
  }, { message: "the finished sub-agent" });
  assert.equal(done.output, full, "the tool's output is the same message");
  // A memoised card sees each change too: the store object is a new one after each.
  await eventually(async () => (await page.evaluate(() => harness.subAgents())).memo[done.toolCallId] === full, {
    message: "the memoised card shows the finished sub-agent",
  });
  await eventually(async () => (await lastText(page)) === "assistant: The research on live view is done.", {
    message: "the parent's answer",
  });
  const { seen } = await page.evaluate(() => harness.subAgents());
  const versions = seen[done.toolCallId];
  assert.ok(versions.length >= 2, `it grew in steps: ${JSON.stringify(versions)}`);
  versions.forEach((v, i) => assert.ok(i === 0 || v.startsWith(versions[i - 1]), `only ever appended: ${versions}`));
  assert.deepEqual(page.pageErrors, []);

  // A second research turn, and the page reloads in the middle of it: the resumed stream
  // replays the turn and a fresh store rebuilds the sub-agent from it, with nothing doubled.
  await page.evaluate(() => void harness.send("research after reload"));
  await eventually(async () => {
    const { cards } = await page.evaluate(() => harness.subAgents());
    return cards.length === 2 && cards[1].live.length > 0;
  }, { message: "the second sub-agent started" });
  await page.reload();
  await page.waitForFunction(() => typeof window.harness === "object");
  page.pageErrors = [];
  page.on("pageerror", (e) => page.pageErrors.push(e));
  // `resume` is switched on after StrictMode's simulated unmount: @ai-sdk/react's cleanup stops
  // the resume its first effect started, and its second effect then skips it (the chat is still
  // "submitted") — a development-build artefact of useChat, whatever the transport.
  await page.evaluate((id) => harness.mount(id), chatId);
  await page.waitForTimeout(100);
  await page.evaluate(() => harness.update({ resume: true }));
  const second = report("after reload");
  const resumed = await eventually(async () => {
    const { cards } = await page.evaluate(() => harness.subAgents());
    const card = cards.at(-1);
    return card?.state === "output-available" && card.live === second && card;
  }, { message: "the resumed sub-agent finished" });
  assert.equal(resumed.output, second);
  await eventually(async () => (await lastText(page)) === "assistant: The research on after reload is done.", {
    message: "the resumed parent's answer",
  });
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("usePendingMessages: a steer injected mid-turn, a late one answered next without a second send, then the queue", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("steer");
  await page.evaluate((id) => harness.mount(id), chatId);
  await page.waitForTimeout(100); // StrictMode's simulated unmount/remount

  await page.evaluate(() => void harness.send("inspect the spec"));
  await eventually(async () => (await page.evaluate(() => harness.status())) === "streaming", { message: "streaming" });
  // The tool runs for 1.5 s: this one reaches its step boundary and is injected.
  await page.evaluate(() => harness.steer("answer in French"));
  const overlay = (expected) =>
    eventually(async () => {
      const now = (await page.evaluate(() => harness.pending())).map((p) => [p.text, p.mode]);
      return JSON.stringify(now) === JSON.stringify(expected) && now;
    }, { message: `the overlay ${JSON.stringify(expected)}` });
  await overlay([["answer in French", "steering"]]);
  await eventually(async () => (await lastText(page)).includes("[injected: answer in French]"), { message: "the injection point" });
  await eventually(async () => (await page.evaluate(() => harness.pending())).length === 0, {
    message: "the injected message leaves the overlay",
  });

  // Once the summary streams, the boundary has passed: a steer now is answered as the next turn.
  await eventually(async () => (await lastText(page)).includes("Summary of"), { message: "the summary streams" });
  assert.equal(await page.evaluate(() => harness.status()), "streaming");
  await page.evaluate(() => {
    harness.steer("and in German");
    harness.queue("one more thing");
  });
  await overlay([["and in German", "steering"], ["one more thing", "queued"]]);

  const expected = [
    "user: inspect the spec",
    "assistant: [injected: answer in French]Summary of the spec: The document describes a chat application. Steered by: answer in French.",
    "user: and in German",
    "assistant: You said: and in German",
    "user: one more thing",
    "assistant: You said: one more thing",
  ];
  await eventually(async () => {
    const texts = await page.evaluate(() => harness.texts());
    return texts.length === expected.length && (await page.evaluate(() => harness.status())) === "ready";
  }, { message: "the steer's answer, then the queued message's", timeout: 20_000 });
  assert.deepEqual(await page.evaluate(() => harness.texts()), expected);
  assert.deepEqual(await page.evaluate(() => harness.pending()), []);

  // Every message reached the agent exactly once (the JS hook sends a late steer twice, W29).
  const state = await (await fetch(`${server.url}/__admin/chats/${chatId}/state`)).json();
  const sent = state.inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text);
  assert.deepEqual(sent, ["inspect the spec", "answer in French", "and in German", "one more thing"]);
  assert.ok(!(await page.evaluate(() => harness.events())).some((e) => e.endsWith(":stream-error")));
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("the SDK's injection helpers are exported under its names", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const injected = (ids) => ({ type: "data-pending-message-injected", data: { messageIds: ids, messages: ids.map((id) => ({ id, text: id })) } });
  const messages = [
    { id: "u1", role: "user", parts: [injected(["not-counted"])] },
    { id: "a1", role: "assistant", parts: [{ type: "text", text: "hi" }, injected(["m1", "m2"])] },
    { id: "a2", role: "assistant", parts: [injected(["m3", "m1"])] },
  ];
  assert.deepEqual(await page.evaluate((m) => harness.injectionHelpers(m), messages), {
    isInjectionPart: [true, false, true, true],
    ids: [["not-counted"], [], ["m1", "m2"], ["m3", "m1"]],
    messages: [
      [{ id: "not-counted", text: "not-counted" }],
      [],
      [{ id: "m1", text: "m1" }, { id: "m2", text: "m2" }],
      [{ id: "m3", text: "m3" }, { id: "m1", text: "m1" }],
    ],
    all: ["m1", "m2", "m3", "m1"], // (as the SDK's: repeats kept)
  });
  await page.close();
});

test("usePendingMessages: a message queued in one chat is not sent into the chat switched to", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const [a, b] = [newChatId("queue-a"), newChatId("queue-b")];
  await page.evaluate((id) => harness.mount(id), a);
  await page.waitForTimeout(100);
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT);
  await eventually(async () => progress(await lastText(page)) >= 3, { message: "a's reply under way" });
  await page.evaluate(() => harness.queue("meant for a"));
  assert.equal((await page.evaluate(() => harness.pending())).length, 1);

  // The same component switches to chat b: b's status is `ready`, which is not a's turn ending.
  await page.evaluate((id) => harness.update({ chatId: id }), b);
  await page.waitForTimeout(1000);
  assert.deepEqual(await page.evaluate(() => harness.pending()), [], "b starts with an empty overlay");
  assert.deepEqual((await serverChat(b)).inRecords, [], "nothing was sent to b");
  assert.deepEqual(await page.evaluate(() => harness.texts()), []);
  await page.evaluate(() => harness.unmount());
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

async function handOver(arraySetter) {
  // Both tabs live in one page here, so the handover between them (the lock, the claim, the
  // first copies) takes microseconds rather than a cross-process hop, and each renders at most
  // every 100 ms (useChat's throttle): the tab whose turn just ended has not rendered its last
  // chunks when the other takes the chat, and B's quick turn begins and ends between two of its
  // renders (it must still broadcast it).
  const page = await openHarness();
  const chatId = newChatId("tabs-handover");
  await page.evaluate(([id, setter]) => harness.mountTabs(id, setter), [chatId, arraySetter]);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  await page.evaluate(() => harness.tabSend("a", "Tell me something slow"));
  await eventually(async () => (await tab("b")).isReadOnly, { message: "B read-only" });
  await eventually(async () => progress((await tab("b")).texts.at(-1) ?? "") > 0, { message: "A's reply in B" });
  const quick = "quick one from B";
  await page.evaluate((text) => harness.tabSend("b", text), quick);
  await eventually(async () => (await tab("b")).texts.at(-1) === `user: ${quick}`, { message: "B's message, waiting" });
  const all = [`user: ${SLOW_PROMPT}`, `assistant: ${slowReply()}`, `user: ${quick}`, `assistant: ${echo(quick)}`];
  // (A failure says what the tab showed; 30 s: the whole suite shares two cores in CI.)
  const shows = (name) => async () => {
    const t = await tab(name);
    if (JSON.stringify(t.texts) === JSON.stringify(all)) return true;
    throw new Error(`${name}: ${JSON.stringify({ texts: t.texts, isReadOnly: t.isReadOnly, sending: t.sending })}`);
  };
  await eventually(shows("a"), { message: "both exchanges in A", timeout: 30_000 });
  await eventually(shows("b"), { message: "both exchanges in B", timeout: 30_000 });
  await new Promise((r) => setTimeout(r, 2000)); // past every grace period
  assert.deepEqual((await tab("a")).texts, all);
  assert.deepEqual((await tab("b")).texts, all);
  assert.deepEqual(await page.evaluate(() => harness.tabDuplicates()), [], "no state with a message twice");
  assert.deepEqual([(await tab("a")).sending, (await tab("b")).sending], [null, null], "no send left in flight");
  assert.equal((await serverChat(chatId)).turns, 2);
  assert.deepEqual(page.pageErrors, []);
  await page.close();
}

test("useMultiTabChat with multiTabSend: \"queue\": a message queued in one tab goes after the other's reply, and neither tab shows a message twice", { timeout: 45_000 }, () =>
  handOver(""));

test("useMultiTabChat: the same with setters that throw on an updater (merged with what was rendered)", { timeout: 45_000 }, () =>
  handOver("ab"));

test("useMultiTabChat: a tab that leaves as its reply finishes still gives the other tab the whole reply", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("tabs-leave-on-finish");
  await page.evaluate((id) => harness.mountTabs(id, "", { leaveAOnFinish: true }), chatId);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  await page.evaluate((text) => harness.tabSend("a", text), SLOW_PROMPT);
  await eventually(async () => (await tab("a")).gone === true, { message: "A left as its reply finished", timeout: 30_000 });
  await eventually(async () => (await tab("b")).texts.at(-1) === `assistant: ${slowReply(SLOW_PROMPT)}`, {
    message: "B shows the whole reply",
    timeout: 5_000,
  });
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("multiTabSend \"queue\": a message waiting for the other tab's turn is still sent when its component unmounts", { timeout: 45_000 }, async () => {
  // Leaving a chat does not give up a message on its way (README: "Leaving is not stopping"),
  // including one in the writer lock's queue, though the hook disposes its transport.
  const page = await openHarness();
  const chatId = newChatId("tabs-queued-unmount");
  await page.evaluate((id) => harness.mountTabs(id), chatId);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  await page.evaluate((text) => harness.tabSend("a", text), SLOW_PROMPT);
  await eventually(async () => (await tab("b")).isReadOnly, { message: "B read-only" });
  const queued = "sent from a pane that then closed";
  await page.evaluate((text) => harness.tabSend("b", text), queued);
  await eventually(async () => (await tab("b")).sending !== null, { message: "B's message waiting" });
  await page.evaluate(() => harness.dropTabB());
  await eventually(async () => (await serverChat(chatId)).inRecords.length === 2, {
    message: "B's message on .in after A's turn",
    timeout: 30_000,
  });
  await eventually(async () => (await serverChat(chatId)).turns === 2, { message: "its turn ran", timeout: 30_000 });
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("useMultiTabChat: a pane whose transport becomes null is no longer read-only", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("tabs-null");
  await page.evaluate((id) => harness.mountTabs(id), chatId);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  await page.evaluate((text) => harness.tabSend("a", text), SLOW_PROMPT);
  await eventually(async () => (await tab("b")).isReadOnly, { message: "B read-only" });
  // (B is read-only from A's claim on, before A's reply has begun: wait for it.)
  await eventually(async () => (await tab("a")).status === "streaming", { message: "A's reply" });
  await page.evaluate(() => harness.stopSyncingTabB());
  await eventually(async () => !(await tab("b")).isReadOnly, { message: "B's hook is inert" });
  assert.equal((await tab("a")).status, "streaming", "while A still answers");
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("useMultiTabChat without a chat id is inert: the pane sends and shows its reply, nothing throws", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("tabs-no-id");
  await page.evaluate((id) => harness.mountTabs(id, "", { noChatIdB: true }), chatId);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  // B's hook has no chat id, so it neither broadcasts B's messages nor reads A's claims.
  await page.evaluate(() => harness.tabSend("b", "hello"));
  await eventually(async () => (await tab("b")).texts.at(-1) === `assistant: ${echo("hello")}`, { message: "B's reply" });
  await new Promise((r) => setTimeout(r, 500)); // room for a broadcast B's hook must not make
  assert.equal((await tab("b")).isReadOnly, false);
  assert.deepEqual((await tab("a")).texts, [], "B's messages were not broadcast to A");
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("useMultiTabChat: an owner's message whose send fails before the server takes it still reaches the other tab", { timeout: 45_000 }, async () => {
  // The owner holds its broadcast until the server takes its message; a send that fails first
  // leaves no render behind to trigger one, so the hook must look again by itself.
  const page = await openHarness();
  const chatId = newChatId("tabs-failed-send");
  await page.evaluate((id) => harness.mountTabs(id), chatId);
  await new Promise((r) => setTimeout(r, 100));
  const tab = (name) => page.evaluate((n) => harness.tab(n), name);
  await page.evaluate(() => harness.tabSend("a", "hello"));
  await eventually(async () => (await tab("b")).texts.length === 2, { message: "the first exchange in B" });
  await new Promise((r) => setTimeout(r, 2000)); // past A's grace period
  const res = await setFaults(chatId, { appendFailures: { status: 400, count: 1 } });
  assert.ok(res.ok);
  await page.evaluate(() => harness.tabSend("a", "this one is refused"));
  await eventually(async () => (await tab("a")).status === "error", { message: "A's send to fail" });
  await eventually(async () => (await tab("b")).texts.at(-1) === "user: this one is refused", { message: "A's message in B" });
  assert.equal((await serverChat(chatId)).inRecords.length, 1, "only the first message reached the agent");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

// <Activity> (Next.js keeps a route it left this way): hidden, a component's effects are cleaned
// up as on an unmount but its state stays; shown again, every effect runs again.
test("a chat hidden by <Activity> mid-reply and shown again resumes the reply through its own transport", { timeout: 45_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("activity");
  await slowerReplies(chatId);
  await page.evaluate((id) => harness.mount(id, { resume: true, strict: false, hidden: false }), chatId);
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT);
  await eventually(async () => progress(await lastText(page)) >= 3, { message: "the reply under way" });
  await page.evaluate(() => harness.queue("and then this"));

  await page.evaluate(() => harness.update({ hidden: true }));
  await eventually(async () => (await page.evaluate(() => harness.info())).currentDisposed === 1, {
    message: "disposed while hidden",
  });
  let state = await serverChat(chatId);
  assert.equal(state.currentTurnActive, true, "the agent goes on while the chat is hidden");

  await page.evaluate(() => harness.update({ hidden: false }));
  const expected = [`user: ${SLOW_PROMPT}`, `assistant: ${slowReply()}`, "user: and then this", `assistant: ${echo("and then this")}`];
  await eventually(async () => JSON.stringify(await page.evaluate(() => harness.texts())) === JSON.stringify(expected), {
    message: "the whole reply, then the message queued before hiding",
    timeout: 30_000,
  });
  const info = await page.evaluate(() => harness.info());
  assert.equal(info.transports, 1, "the same transport all along");
  state = await serverChat(chatId);
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message", "message"], "no stop, each message once");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});

test("usePendingMessages: a message queued before an <Activity> hide is not sent the moment the chat is shown again", { timeout: 45_000 }, async () => {
  // Without `resume`, nothing follows the reply that was detached by the hide: the queued
  // message waits for the end of the next turn (the status rendered before the hide, still
  // `streaming`, turning `ready` on the show is not the end of a turn).
  const page = await openHarness();
  const chatId = newChatId("activity-queue");
  await page.evaluate((id) => harness.mount(id, { resume: false, strict: false, hidden: false }), chatId);
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT);
  await eventually(async () => progress(await lastText(page)) >= 3, { message: "the reply under way" });
  await page.evaluate(() => harness.queue("and then this"));
  await page.evaluate(() => harness.update({ hidden: true }));
  await page.waitForTimeout(200);
  await page.evaluate(() => harness.update({ hidden: false }));
  await page.waitForTimeout(1500);
  assert.equal((await serverChat(chatId)).inRecords.length, 1, "the queued message still waits");
  assert.deepEqual((await page.evaluate(() => harness.pending())).map((p) => p.text), ["and then this"]);
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("usePendingMessages with a Chat that lives outside the view: hidden and shown mid-reply, a message queued then goes at the end of that reply", { timeout: 45_000 }, async () => {
  // useChat({ chat }) does not stop the reply while the view is hidden: the status shown again,
  // `streaming`, is the turn still running, and its end counts.
  const page = await openHarness();
  const chatId = newChatId("external-queue");
  await page.evaluate((id) => harness.mountExternal(id, { strict: false, hidden: false }), chatId);
  await page.evaluate((text) => void harness.send(text), SLOW_PROMPT);
  await eventually(async () => progress(await lastText(page)) >= 3, { message: "the reply under way" });
  await page.evaluate(() => harness.update({ hidden: true }));
  await page.waitForTimeout(200);
  await page.evaluate(() => harness.update({ hidden: false }));
  await page.waitForTimeout(100);
  assert.equal(await page.evaluate(() => harness.status()), "streaming", "the reply went on while hidden");
  await page.evaluate(() => harness.queue("and then this"));
  await eventually(async () => (await serverChat(chatId)).inRecords.length === 2, {
    message: "the queued message, sent when the reply ended",
    timeout: 20_000,
  });
  await eventually(async () => (await lastText(page)) === `assistant: ${echo("and then this")}`, { message: "its reply" });
  assert.deepEqual(page.pageErrors, []);
  await page.evaluate(() => harness.unmount());
  await page.close();
});

test("useLoadTranscript loads once under StrictMode and keeps its transcript when hidden and shown again", { timeout: 30_000 }, async () => {
  const page = await openHarness();
  const chatId = newChatId("transcript-activity");
  await page.evaluate((id) => harness.mountTranscript(id, false, { hidden: false }), chatId);
  await eventually(async () => !(await page.evaluate(() => harness.transcript())).isLoading, { message: "loaded" });
  await page.waitForTimeout(100);
  assert.equal((await page.evaluate(() => harness.transcript())).loads.length, 1, "one load (StrictMode's first run is dropped)");
  await page.evaluate(() => harness.updateTranscript({ hidden: true }));
  await page.waitForTimeout(50);
  await page.evaluate(() => harness.updateTranscript({ hidden: false }));
  await page.waitForTimeout(100);
  const t = await page.evaluate(() => harness.transcript());
  assert.equal(t.isLoading, false);
  assert.deepEqual(t.texts, [`history of ${chatId}`]);
  assert.equal(t.loads.length, 1, "not loaded again");
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});
