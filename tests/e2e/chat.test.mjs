// One tab: the demo's useChat + trigger-chat-wasm against chat-devserver, through what a user
// sees (the rendered transcript, buttons, banners) and what the agent saw (admin API).
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  ROOT,
  SLOW_PROMPT,
  chatState,
  echo,
  eventually,
  isVisible,
  lastAssistantText,
  launchBrowser,
  newChatId,
  newContext,
  openChat,
  reload,
  requestLog,
  screenshotPath,
  send,
  setFaults,
  slowProgress,
  slowReply,
  transcript,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

const T = { timeout: 45_000 };

async function assertOneExchange(page, prompt, reply) {
  const messages = await transcript(page);
  assert.deepEqual(
    messages.map((m) => [m.role, m.text]),
    [
      ["user", prompt],
      ["assistant", reply],
    ],
  );
}

test("a message streams in piece by piece and completes", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("stream");
  const page = await openChat(context, chatId);

  await send(page, SLOW_PROMPT);
  // While the reply streams: partial text that grows, a Stop button, a live status line.
  const first = await eventually(async () => {
    const n = slowProgress(await lastAssistantText(page));
    return n >= 5 && n < 35 && n;
  }, { message: "a partial reply" });
  assert.ok(await isVisible(page, "stop"), "Stop is offered while the reply streams");
  assert.match(await page.getByTestId("status-line").innerText(), /Streaming/);
  await eventually(async () => slowProgress(await lastAssistantText(page)) > first, { message: "more text" });

  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the full reply" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());
  await eventually(async () => /Reply complete/.test(await page.getByTestId("status-line").innerText()), {
    message: "status 'Reply complete'",
  });
  assert.ok(await isVisible(page, "send"), "the composer is back");

  // A second, instant turn in the same chat.
  await send(page, "And now quickly");
  await eventually(async () => (await lastAssistantText(page)) === echo("And now quickly"), { message: "echo" });
  assert.equal((await transcript(page)).length, 4);
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("reloading mid-reply resumes it: no duplicated message, no repeated text", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("reload");
  const page = await openChat(context, chatId);
  // An 8 s reply: room for a slow machine to reload and resume before it is over.
  await setFaults(chatId, { slowIntervalMs: 200 }); // (throws unless accepted)

  await send(page, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 8, { message: "8 numbers" });
  await reload(page, chatId);

  // The resumed reply keeps streaming into the same message.
  await eventually(async () => (await page.getByTestId("chat").getAttribute("data-status")) === "streaming", {
    message: "the resumed stream",
  });
  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the full reply" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());

  // And it stays that way after another reload (the saved transcript is clean too).
  await reload(page, chatId);
  await eventually(async () => (await transcript(page)).length === 2, { message: "the saved transcript" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());
  const state = await chatState(chatId);
  assert.equal(state.turns, 1, "the agent answered once");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("Stop after a reload stops the agent's turn", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("stop");
  const page = await openChat(context, chatId);
  // Room to reload before the reply is over.
  await setFaults(chatId, { slowIntervalMs: 200 }); // (throws unless accepted)

  await send(page, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 5, { message: "5 numbers" });
  await reload(page, chatId);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 10, { message: "the resumed reply" });
  assert.equal((await chatState(chatId)).currentTurnActive, true, "the agent is still generating");

  await page.getByTestId("stop").click();

  // The agent received a stop and its turn is over well before the 40th number.
  const state = await eventually(async () => {
    const s = await chatState(chatId);
    return !s.currentTurnActive && s;
  }, { message: "the server turn to end" });
  assert.ok(
    state.inRecords.some((r) => r.kind === "stop"),
    `a {kind: "stop"} record reached .in: ${JSON.stringify(state.inRecords.map((r) => r.kind))}`,
  );
  await eventually(() => isVisible(page, "send"), { message: "the composer to come back" });
  const stoppedAt = slowProgress(await lastAssistantText(page));
  assert.ok(stoppedAt < 40, `the reply stopped early (at ${stoppedAt})`);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(slowProgress(await lastAssistantText(page)), stoppedAt, "no more text after Stop");

  // The chat is usable afterwards.
  await send(page, "still there?");
  await eventually(async () => (await lastAssistantText(page)) === echo("still there?"), { message: "next turn" });
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

async function askWeather(page) {
  await send(page, "What's the weather in Lisbon?");
  await eventually(async () => (await page.getByTestId("tool-card").getAttribute("data-state")) === "approval-requested", {
    message: "the approval card",
  });
  assert.match(await page.getByTestId("tool-card").innerText(), /weather in Lisbon/);
}

test("approving a tool runs it and the agent answers with its result", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("approve");
  const page = await openChat(context, chatId);
  await askWeather(page);

  await page.getByTestId("approve").click();
  await eventually(() => isVisible(page, "tool-result"), { message: "the tool result" });
  assert.match(await page.getByTestId("tool-result").innerText(), /Lisbon: sunny, 21°C/);
  await eventually(async () => (await lastAssistantText(page)) === "The weather in Lisbon is sunny, 21°C.", {
    message: "the answer",
  });
  const messages = await transcript(page);
  assert.deepEqual(messages.map((m) => m.role), ["user", "assistant"], "the answer continues the tool message");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("denying a tool skips it and the agent says so", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("deny");
  const page = await openChat(context, chatId);
  await askWeather(page);

  await page.getByTestId("deny").click();
  await eventually(() => isVisible(page, "tool-denied"), { message: "the denied state" });
  await eventually(async () => (await lastAssistantText(page)) === "Okay, I won't look up the weather.", {
    message: "the answer",
  });
  assert.equal(await page.getByTestId("tool-result").count(), 0);
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("Undo sends an action: the exchange disappears and the agent acknowledges it", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("action");
  const page = await openChat(context, chatId);
  await send(page, "first");
  await eventually(async () => (await lastAssistantText(page)) === echo("first"), { message: "echo 1" });
  await send(page, "second");
  await eventually(async () => (await lastAssistantText(page)) === echo("second"), { message: "echo 2" });
  const undone = (await transcript(page))[2];

  await page.getByTestId("undo").click();
  await eventually(async () => (await transcript(page)).length === 2, { message: "the last exchange removed" });
  const notice = await eventually(async () => (await isVisible(page, "notice")) && page.getByTestId("notice").innerText(), {
    message: "the agent's acknowledgement",
  });
  assert.match(notice, /Action received: \{"type":"undo","messageId":"[^"]+"\}/);
  assert.deepEqual((await transcript(page)).map((m) => m.text), ["first", echo("first")]);

  const actions = (await chatState(chatId)).inRecords.filter((r) => r.body?.payload?.trigger === "action");
  assert.equal(actions.length, 1, "one action reached the agent");
  assert.deepEqual(actions[0].body.payload.action, { type: "undo", messageId: undone.id });

  // The undo sticks across a reload.
  await reload(page, chatId);
  await eventually(async () => (await transcript(page)).length === 2, { message: "the saved transcript" });
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("a connection dropped mid-reply reconnects and the reply completes", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("drop");
  const page = await openChat(context, chatId);
  await setFaults(chatId, { dropAfterRecords: 6 });

  await send(page, SLOW_PROMPT);
  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the full reply" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());

  const outs = (await requestLog(chatId)).filter((r) => r.method === "GET" && r.path.endsWith("/out"));
  assert.ok(outs.length >= 2, `the stream was reopened (${outs.length} .out requests)`);
  assert.ok(outs.slice(1).some((r) => r.headers["last-event-id"]), "the reconnect resumed from a cursor");
  assert.equal(await page.getByTestId("error-banner").count(), 0, "no error shown");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

// Chromium's own offline mode (navigator.onLine false, `offline`/`online` events, every request
// refused). Online, the retry budget of an append lasts about ten seconds; offline it must not run.
const OFFLINE_MS = 15_000;

test("a message sent offline waits, then goes out once when the network is back", { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("offline-send");
  const page = await openChat(context, chatId);
  await send(page, "hello");
  await eventually(async () => (await lastAssistantText(page)) === echo("hello"), { message: "the first reply" });

  await context.setOffline(true);
  await send(page, "Written in a tunnel");
  await new Promise((r) => setTimeout(r, OFFLINE_MS));
  assert.equal(await page.getByTestId("error-banner").count(), 0, "no error while offline");
  assert.deepEqual(
    (await transcript(page)).map((m) => m.text),
    ["hello", echo("hello"), "Written in a tunnel"],
    "the message waits in the transcript",
  );
  const badge = page.getByTestId("connection");
  assert.equal(await badge.getAttribute("data-state"), "offline", "useConnectionState says offline");
  assert.match(await badge.innerText(), /Offline · 1 send waiting for the server/);

  await context.setOffline(false);
  await eventually(async () => (await lastAssistantText(page)) === echo("Written in a tunnel"), {
    message: "the reply once online",
  });
  assert.equal((await transcript(page)).length, 4);
  await eventually(async () => (await badge.count()) === 0, { message: "the connection badge goes once idle" });
  const inputs = (await chatState(chatId)).inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text);
  assert.deepEqual(inputs, ["hello", "Written in a tunnel"], "the agent got it exactly once");
  assert.equal(await page.getByTestId("error-banner").count(), 0, "no error shown");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("a message written offline in a page that is then closed is sent by the next page, once", { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("offline-outbox");
  const page = await openChat(context, chatId);
  await send(page, "hello");
  await eventually(async () => (await lastAssistantText(page)) === echo("hello"), { message: "the first reply" });

  await context.setOffline(true);
  await send(page, "Written before closing the tab");
  await eventually(async () => (await page.getByTestId("connection").getAttribute("data-state")) === "offline", {
    message: "the send waits for the network",
  });
  await new Promise((r) => setTimeout(r, 500)); // the demo saves its transcript (150 ms throttle)
  await page.close();
  assert.deepEqual(
    (await chatState(chatId)).inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text),
    ["hello"],
    "nothing reached the agent while offline",
  );

  // Later, online: the chat is opened again (useChat({ resume: true }) calls reconnectToStream).
  await context.setOffline(false);
  const again = await openChat(context, chatId);
  await eventually(async () => (await lastAssistantText(again)) === echo("Written before closing the tab"), {
    message: "the reply to the saved message",
  });
  assert.deepEqual(
    (await transcript(again)).map((m) => m.text),
    ["hello", echo("hello"), "Written before closing the tab", echo("Written before closing the tab")],
  );
  const inputs = (await chatState(chatId)).inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text);
  assert.deepEqual(inputs, ["hello", "Written before closing the tab"], "the agent got it exactly once");
  // A reload afterwards sends nothing more.
  await reload(again, chatId);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await chatState(chatId)).inRecords.length, 2);
  assert.equal(await again.getByTestId("error-banner").count(), 0, "no error shown");
  assert.deepEqual(again.pageErrors, []);
  await context.close();
});

test("a reply that loses the network mid-stream completes when it is back", { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("offline-stream");
  const page = await openChat(context, chatId);
  // Offline mode leaves an open response alone; the server cuts it a little later, so the
  // reconnects meet the missing network. (A reply takes 4 s, 100 ms per record.)
  await setFaults(chatId, { dropAfterRecords: 15 });
  await send(page, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 3, { message: "a partial reply" });

  await context.setOffline(true);
  await new Promise((r) => setTimeout(r, OFFLINE_MS));
  assert.equal(await page.getByTestId("error-banner").count(), 0, "no error while offline");
  assert.ok(slowProgress(await lastAssistantText(page)) < 40, "the reply is not complete offline");
  await eventually(async () => (await page.getByTestId("connection").getAttribute("data-state")) === "offline", {
    message: "the stream reports it waits for the network",
  });

  await context.setOffline(false);
  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the full reply" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());
  const outs = (await requestLog(chatId)).filter((r) => r.method === "GET" && r.path.endsWith("/out"));
  assert.ok(outs.slice(1).some((r) => r.headers["last-event-id"]), "resumed from the cursor");
  assert.equal(await page.getByTestId("error-banner").count(), 0, "no error shown");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("an agent error is shown and the next message works", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("error");
  const page = await openChat(context, chatId);
  await send(page, "please show me an error");
  await eventually(() => isVisible(page, "error-banner"), { message: "the error banner" });
  assert.match(await page.getByTestId("error-banner").innerText(), /Scripted error/);

  await send(page, "ok, hello");
  await eventually(async () => (await lastAssistantText(page)) === echo("ok, hello"), { message: "echo" });
  assert.equal(await page.getByTestId("error-banner").count(), 0, "the banner cleared");
  await context.close();
});

test("a conversation the agent closed says so and cannot be written to, even after a reload", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("goodbye");
  const page = await openChat(context, chatId);

  await send(page, "goodbye");
  await eventually(async () => (await lastAssistantText(page)) === "Goodbye! This conversation is now closed.", {
    message: "the goodbye",
  });
  await eventually(() => isVisible(page, "closed-banner"), { message: "the closed banner" });
  assert.match(await page.getByTestId("closed-banner").innerText(), /ended/);
  assert.ok(await page.getByTestId("composer").isDisabled(), "the composer is disabled");
  assert.ok(await page.getByTestId("send").isDisabled(), "Send is disabled");
  assert.equal((await chatState(chatId)).closed, true);

  await reload(page, chatId);
  await eventually(() => isVisible(page, "closed-banner"), { message: "the closed banner after reload" });
  assert.ok(await page.getByTestId("composer").isDisabled(), "still disabled after a reload");
  await eventually(async () => (await transcript(page)).length === 2, { message: "the transcript" });
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("opening another chat mid-reply leaves the agent running; coming back shows the whole reply", T, async () => {
  const context = await newContext(browser);
  const first = newChatId("leave");
  const page = await openChat(context, first);
  await setFaults(first, { slowIntervalMs: 200 }); // an 8 s reply
  await send(page, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 5, { message: "a partial reply" });

  await page.getByTestId("new-chat").click();
  await eventually(async () => (await page.getByTestId("chat").getAttribute("data-chat-id")) !== first, {
    message: "a new chat",
  });
  await page.waitForTimeout(300);
  let state = await chatState(first);
  assert.equal(state.currentTurnActive, true, "the agent is still generating");
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"], "no stop reached .in");

  await page.locator(`[data-testid="chat-item"][data-chat-id="${first}"] .chat-open`).click();
  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the whole reply" });
  await assertOneExchange(page, SLOW_PROMPT, slowReply());
  state = await chatState(first);
  assert.deepEqual(state.inRecords.map((r) => r.kind), ["message"]);
  assert.equal(state.turns, 1, "the agent answered once");
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("the sidebar creates and switches chats, and each keeps its own transcript", T, async () => {
  const context = await newContext(browser);
  const first = newChatId("list");
  const page = await openChat(context, first);
  await send(page, "Hello there!");
  await eventually(async () => (await lastAssistantText(page)) === echo("Hello there!"), { message: "echo" });

  // A second chat, with an approved tool call.
  await page.getByTestId("new-chat").click();
  await eventually(async () => (await page.getByTestId("chat").getAttribute("data-chat-id")) !== first, {
    message: "a new chat",
  });
  const second = await page.getByTestId("chat").getAttribute("data-chat-id");
  assert.equal(await page.getByTestId("message").count(), 0, "the new chat starts empty");
  await send(page, "What's the weather in Lisbon?");
  await page.getByTestId("approve").click();
  await eventually(async () => (await lastAssistantText(page)) === "The weather in Lisbon is sunny, 21°C.", {
    message: "the weather answer",
  });

  // A slow reply in the same chat, caught mid-way for the README's screenshot.
  await send(page, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(page)) >= 14, { message: "a partial reply" });
  const shot = screenshotPath("streaming.png");
  await page.screenshot({ path: shot });
  if (process.env.UPDATE_SCREENSHOT) copyFileSync(shot, join(ROOT, "www", "screenshot.png"));
  await eventually(async () => (await lastAssistantText(page)) === slowReply(), { message: "the full reply" });

  const titles = async () => page.$$eval('[data-testid="chat-item"] .chat-title', (n) => n.map((e) => e.textContent));
  assert.deepEqual(await titles(), ["What's the weather in Lisbon?", "Hello there!"], "most recent first");

  await page.locator(`[data-testid="chat-item"][data-chat-id="${first}"] .chat-open`).click();
  await eventually(async () => (await lastAssistantText(page)) === echo("Hello there!"), { message: "chat 1 back" });
  assert.equal((await transcript(page)).length, 2);
  await page.locator(`[data-testid="chat-item"][data-chat-id="${second}"] .chat-open`).click();
  await eventually(() => isVisible(page, "tool-result"), { message: "chat 2's tool result" });

  // The list and the open chat survive a reload.
  await reload(page, second);
  assert.equal(await page.getByTestId("chat-item").count(), 2);
  assert.equal((await transcript(page)).length, 4);
  await eventually(() => isVisible(page, "tool-result"), { message: "chat 2 after a reload" });
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test("a research tool shows its sub-agent live; a message typed meanwhile steers an inspect turn", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("agents");
  const page = await openChat(context, chatId);

  await send(page, "Research WebAssembly");
  const report = `Report on WebAssembly: ${Array.from({ length: 10 }, (_, i) => `finding ${i + 1}`).join(", ")}.`;
  const card = page.getByTestId("research-card");
  const partial = await eventually(async () => {
    if ((await card.count()) === 0 || (await card.getAttribute("data-state")) === "output-available") return false;
    const text = await page.getByTestId("research-text").innerText();
    return text.startsWith("Report on") && text !== report && text;
  }, { message: "the sub-agent's reply while it runs" });
  assert.ok(report.startsWith(partial), partial);
  await eventually(async () => (await card.getAttribute("data-state")) === "output-available", { message: "the tool's output" });
  assert.equal(await page.getByTestId("research-text").innerText(), report);
  await eventually(async () => (await lastAssistantText(page)).includes("The research on WebAssembly is done."), {
    message: "the parent's answer",
  });
  await eventually(() => isVisible(page, "send"), { message: "the composer" });

  await send(page, "Inspect the design doc");
  await eventually(() => isVisible(page, "inspect-card"), { message: "the tool runs" });
  await send(page, "answer in French"); // Enter while the agent works: a steering message
  await eventually(async () => /^Steering\s*answer in French$/.test(await page.getByTestId("pending").textContent()), {
    message: "the pending steering message",
  });
  await eventually(async () => (await page.getByTestId("injected").count()) === 1, { message: "the injection point" });
  assert.match(await page.getByTestId("injected").innerText(), /steered: answer in French/);
  await eventually(async () => (await lastAssistantText(page)).endsWith("Steered by: answer in French."), {
    message: "the steered summary",
  });
  assert.equal(await page.getByTestId("pending").count(), 0, "nothing left pending");
  const inputs = (await chatState(chatId)).inRecords.map((r) => r.body?.payload?.message?.parts?.[0]?.text);
  assert.deepEqual(inputs, ["Research WebAssembly", "Inspect the design doc", "answer in French"]);
  await context.close();
});
