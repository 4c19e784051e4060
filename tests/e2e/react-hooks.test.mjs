// The React hooks under StrictMode with React's development build (double render, effects run
// twice on mount), through the harness in tests/e2e/harness (built by tests/e2e/run into
// target/e2e/harness-dist). What a user would notice: a transport disposed by StrictMode's
// simulated unmount (sends break), options that lag one render behind (W27), a leak on unmount.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OUT_DIR, eventually, launchBrowser, newChatId, serve } from "./helpers.mjs";

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
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});
