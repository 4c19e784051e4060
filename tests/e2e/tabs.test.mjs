// Two tabs of one browser profile on the same chat (multiTab: true + useMultiTabChat): one tab
// replies at a time, the other is read-only and mirrors it live, and the final state reaches
// every tab (the JS hook's M7/M8 weaknesses).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  SLOW_PROMPT,
  chatState,
  echo,
  eventually,
  inRecords,
  isVisible,
  lastAssistantText,
  launchBrowser,
  newChatId,
  newContext,
  openChat,
  send,
  slowProgress,
  slowReply,
  transcript,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

const T = { timeout: 60_000 };
const texts = async (page) => (await transcript(page)).map((m) => [m.role, m.text]);

test("the second tab is read-only while the first replies, mirrors it live, then can send itself", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("tabs");
  const a = await openChat(context, chatId);
  const b = await openChat(context, chatId);
  await a.bringToFront();

  await send(a, SLOW_PROMPT);
  await eventually(() => isVisible(b, "read-only-banner"), { message: "the read-only banner in tab B" });
  assert.ok(await b.getByTestId("composer").isDisabled(), "B cannot write meanwhile");
  assert.equal(await a.getByTestId("read-only-banner").count(), 0, "A, the owner, is not read-only");

  // Live: B shows A's reply while it grows.
  const seen = await eventually(async () => {
    const n = slowProgress(await lastAssistantText(b));
    return n > 0 && n < 35 && n;
  }, { message: "a partial reply mirrored in B" });
  await eventually(async () => slowProgress(await lastAssistantText(b)) > seen, { message: "B's copy to grow" });

  // The final state reaches B, and B becomes writable.
  await eventually(async () => (await lastAssistantText(a)) === slowReply(), { message: "A's full reply" });
  await eventually(async () => (await lastAssistantText(b)) === slowReply(), { message: "the full reply in B" });
  await eventually(async () => !(await isVisible(b, "read-only-banner")), { message: "B's banner to go" });
  await eventually(async () => !(await b.getByTestId("composer").isDisabled()), { message: "B's composer" });
  const finished = [
    ["user", SLOW_PROMPT],
    ["assistant", slowReply()],
  ];
  assert.deepEqual(await texts(b), finished);
  // B becoming writable must not push its copy over A's (M8): A still shows the finished reply.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await texts(a), finished);

  // Now B replies, and the roles swap.
  await b.bringToFront();
  const second = "Another slow one please";
  await send(b, second);
  await eventually(() => isVisible(a, "read-only-banner"), { message: "the read-only banner in tab A" });
  await eventually(async () => (await lastAssistantText(b)) === slowReply(second), { message: "B's reply" });
  await eventually(async () => (await lastAssistantText(a)) === slowReply(second), { message: "B's reply in A" });
  await eventually(async () => !(await isVisible(a, "read-only-banner")), { message: "A's banner to go" });
  const all = [...finished, ["user", second], ["assistant", slowReply(second)]];
  assert.deepEqual(await texts(a), all);
  assert.deepEqual(await texts(b), all);
  assert.equal((await chatState(chatId)).turns, 2, "two turns, no duplicate sends");
  assert.deepEqual([...a.pageErrors, ...b.pageErrors], []);
  await context.close();
});

test("with multiTabSend: \"queue\", a tab writes while the other replies: its message waits, then goes, and both tabs end with both exchanges", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("tabs-queue");
  const a = await openChat(context, chatId, "?tabs=queue");
  const b = await openChat(context, chatId, "?tabs=queue");
  await a.bringToFront();

  await send(a, SLOW_PROMPT);
  await eventually(() => isVisible(b, "read-only-banner"), { message: "the read-only banner in tab B" });
  assert.ok(!(await b.getByTestId("composer").isDisabled()), "B may write meanwhile");
  await eventually(async () => slowProgress(await lastAssistantText(b)) > 0, { message: "A's reply mirrored in B" });

  const queued = "And a quick one from B";
  await b.bringToFront();
  await send(b, queued);
  // B's message stays in B, after A's reply, while that reply keeps growing; nothing is sent yet.
  const seen = await eventually(async () => {
    const t = await texts(b);
    const n = slowProgress(t.at(-2)?.[1] ?? "");
    return t.at(-1)?.[1] === queued && n > 0 && n < 35 && n;
  }, { message: "B's queued message under A's partial reply" });
  await eventually(async () => {
    const t = await texts(b);
    return t.at(-1)?.[1] === queued && slowProgress(t.at(-2)?.[1] ?? "") > seen;
  }, { message: "A's reply to keep growing in B above B's message" });
  assert.equal((await inRecords(chatId)).length, 1, "B's message waits for A's turn");
  assert.ok(!(await texts(a)).some(([, text]) => text === queued), "a waiting message is not broadcast");

  // A's turn ends, B's message goes, and both tabs converge on the whole conversation.
  const all = [
    ["user", SLOW_PROMPT],
    ["assistant", slowReply()],
    ["user", queued],
    ["assistant", echo(queued)],
  ];
  await eventually(async () => JSON.stringify(await texts(b)) === JSON.stringify(all), { message: "both exchanges in B" });
  await eventually(async () => JSON.stringify(await texts(a)) === JSON.stringify(all), { message: "both exchanges in A" });
  await eventually(async () => !(await isVisible(a, "read-only-banner")), { message: "A's banner to go" });
  assert.equal((await chatState(chatId)).turns, 2, "two turns, each message once");
  assert.equal((await inRecords(chatId)).length, 2);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await texts(a), all);
  assert.deepEqual(await texts(b), all);
  assert.deepEqual([...a.pageErrors, ...b.pageErrors], []);
  await context.close();
});

test("a tab opened mid-reply is read-only and ends with the complete reply, once", T, async () => {
  const context = await newContext(browser);
  const chatId = newChatId("late");
  const a = await openChat(context, chatId);
  await send(a, SLOW_PROMPT);
  await eventually(async () => slowProgress(await lastAssistantText(a)) >= 6, { message: "A's partial reply" });

  const b = await openChat(context, chatId);
  await eventually(() => isVisible(b, "read-only-banner"), { message: "the read-only banner in the late tab" });
  assert.ok(await b.getByTestId("composer").isDisabled());

  await eventually(async () => (await lastAssistantText(b)) === slowReply(), { message: "the full reply in B" });
  await eventually(async () => !(await isVisible(b, "read-only-banner")), { message: "B's banner to go" });
  const finished = [
    ["user", SLOW_PROMPT],
    ["assistant", slowReply()],
  ];
  assert.deepEqual(await texts(b), finished);
  assert.deepEqual(await texts(a), finished);
  assert.equal((await chatState(chatId)).turns, 1);
  assert.deepEqual([...a.pageErrors, ...b.pageErrors], []);
  await context.close();
});
