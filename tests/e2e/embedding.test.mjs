// The package where a page is set up unusually, in real Chromium against chat-devserver, through
// the multi-tab harness (tests/e2e/tabs-harness, built by tests/e2e/run into target/e2e/tabs-dist):
// - inside a sandboxed iframe (an opaque origin), where `navigator.locks` exists but refuses every
//   request, a `multiTab` transport must still send instead of calling itself read-only;
// - with its `.wasm` served from elsewhere, `init(url)` called after a transport was built (which
//   already started loading the module from the default place) must be the place it loads from.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OUT_DIR, echo, launchBrowser, newChatId, serve } from "./helpers.mjs";

let browser;
let server;
before(async () => {
  server = await serve(join(OUT_DIR, "tabs-dist"));
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Sends `text` through the harness in `frame` and resolves to the reply's end. */
async function sendAndRead(frame, text) {
  const sent = await frame.evaluate((text) => harness.send(text), text);
  assert.equal(sent.ok, true, `the send went through: ${JSON.stringify(sent)}`);
  return frame.evaluate(() => harness.turnEnd());
}

test("multiTab in a sandboxed iframe, where Web Locks refuse every request, still sends", { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${server.url}/sandboxed.html`);
  let frame;
  await (async () => {
    for (let i = 0; i < 100 && !frame; i++) {
      frame = page.frames().find((f) => f !== page.mainFrame() && f.url().endsWith("/index.html"));
      if (!frame) await page.waitForTimeout(50);
    }
  })();
  assert.ok(frame, "the sandboxed frame loaded");
  await frame.waitForFunction(() => typeof window.harness === "object");
  const refused = await frame.evaluate(async () => {
    try {
      await navigator.locks.request("probe", { ifAvailable: true }, () => {});
      return null;
    } catch (e) {
      return e.name;
    }
  });
  assert.equal(refused, "SecurityError", "this frame's Web Locks refuse requests (else the test proves nothing)");

  const chatId = newChatId("sandboxed");
  await frame.evaluate((chatId) => harness.create({ kind: "wasm", chatId }), chatId);
  const end = await sendAndRead(frame, "hello from a sandbox");
  assert.equal(end.ok, true, JSON.stringify(end));
  assert.equal(end.text, echo("hello from a sandbox"));
  const info = await frame.evaluate(() => harness.info());
  assert.equal(info.isReadOnly, false);
  assert.deepEqual(errors, []);
  await page.close();
});

test("init(url) after a transport was built loads the module from that url", { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  const wasmRequests = [];
  page.on("request", (r) => {
    if (r.url().endsWith(".wasm")) wasmRequests.push(new URL(r.url()).pathname);
  });
  await page.goto(`${server.url}/index.html`);
  await page.waitForFunction(() => typeof window.harness === "object");
  const chatId = newChatId("moved");
  const created = await page.evaluate(
    (chatId) => harness.create({ kind: "wasm", chatId, module: "./pkg-moved/index.js", wasmAt: "./elsewhere/module.wasm" }),
    chatId,
  );
  assert.equal(created.early, "ok", "a call made before init(url) was not failed by the default load");
  const end = await sendAndRead(page, "hello");
  assert.equal(end.ok, true, JSON.stringify(end));
  assert.equal(end.text, echo("hello"));
  assert.ok(wasmRequests.includes("/elsewhere/module.wasm"), `loaded from init's url: ${wasmRequests}`);
  assert.deepEqual(errors, []);
  await page.close();
});
