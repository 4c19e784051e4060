// Multi-tab coordination with real pages (tabs) of one Chromium browser context against
// chat-devserver: the tabs share the origin's BroadcastChannel, Web Locks and localStorage, as a
// user's tabs do. Each page runs tests/e2e/tabs-harness (built by tests/e2e/run into
// target/e2e/tabs-dist and served by a chat-devserver of this file): one transport with
// `multiTab: true` and a vanilla loop that mirrors useMultiTabChat (the writer broadcasts the
// conversation after every chunk; other tabs take its copies). Ours uses `persistence: "none"`:
// the tabs would share localStorage, and what is under test is the tab channel, not stored
// sessions. The official JS transport (@trigger.dev/sdk/chat 4.8.3, bundled for the browser)
// runs in some tabs to check that both sides respect each other's claims.
//
// What a user would notice is asserted: a second writer (two turns for one chat, seen in the
// agent's `.in` log), a send that fails while the composer looked usable, a tab locked out after
// its owner died, a late tab that lets the user type into a chat another tab is answering.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OUT_DIR, SLOW_PROMPT, echo, launchBrowser, newChatId, serve, slowProgress, slowReply } from "./helpers.mjs";

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

// ---- this file's server: admin API and helpers ------------------------------------------------

async function admin(path) {
  const res = await fetch(`${server.url}/__admin${path}`);
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
const chatLog = (chatId) => admin(`/chats/${encodeURIComponent(chatId)}/log`);
const chatState = (chatId) => admin(`/chats/${encodeURIComponent(chatId)}/state`);

/** The user texts of the `.in/append`s that carried a message, in arrival order. */
async function sentMessages(chatId) {
  const texts = [];
  for (const entry of await chatLog(chatId)) {
    if (entry.method !== "POST" || !entry.path.endsWith("/in/append")) continue;
    let body;
    try {
      body = JSON.parse(entry.body);
    } catch {
      continue;
    }
    if (body?.kind !== "message") continue;
    const parts = body.payload?.message?.parts ?? [];
    texts.push(parts.filter((p) => p.type === "text").map((p) => p.text).join(""));
  }
  return texts;
}

/** The request log, one line per request, for failure messages. */
async function logLines(chatId) {
  return (await chatLog(chatId))
    .map((e) => `${e.atMs} ${e.method} ${e.path} ${e.status} ${(e.body ?? "").slice(0, 90)}`)
    .join("\n");
}

async function openTab(context, kind, chatId) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  page.pageErrors = errors;
  await page.goto(`${server.url}/index.html`);
  await page.waitForFunction(() => typeof window.harness === "object");
  page.created = await page.evaluate(({ kind, chatId }) => harness.create({ kind, chatId }), { kind, chatId });
  return page;
}

const send = (page, text, options) => page.evaluate(([text, options]) => harness.send(text, options), [text, options]);
const turnEnd = (page) => page.evaluate(() => harness.turnEnd());
const isReadOnly = (page) => page.evaluate(() => harness.isReadOnly());
/** Resolves to when (page's Date.now()) `isReadOnly` became `value`, or null after `timeout`. */
const waitReadOnly = (page, value, timeout) =>
  page.evaluate(([value, timeout]) => harness.waitReadOnly(value, timeout), [value, timeout]);
const lastText = (page) => page.evaluate(() => harness.lastText());
const info = (page) => page.evaluate(() => harness.info());
const channel = (page) => page.evaluate(() => harness.channel());

async function eventually(check, { timeout = 10_000, interval = 50, message = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

const READ_ONLY = { ok: false, code: "read_only_tab" };
const refused = (result) => ({ ok: result.ok, code: result.code });

// ---- 1. the same tick ----------------------------------------------------------------------

test("two tabs sending in the same tick: one turn reaches the agent, the other send is refused (read_only_tab)", { timeout: 60_000 }, async (t) => {
  const context = await browser.newContext();
  const skews = [];
  // A few rounds, each on a fresh chat, so a lucky ordering cannot pass for a guarantee. Both
  // tabs are told one instant to send at, and the prompts ask for the slow (4 s) reply: the
  // winner's turn outlasts any skew between the two calls, so the other send always meets it
  // (an instant echo could end before a late second call, which may then rightly be accepted).
  for (let round = 1; round <= 4; round++) {
    const chatId = newChatId(`same-tick-${round}`);
    const a = await openTab(context, "wasm", chatId);
    const b = await openTab(context, "wasm", chatId);
    const texts = [`Slow hello from A (${round})`, `Slow hello from B (${round})`];
    const at = Date.now() + 150;
    const results = await Promise.all([send(a, texts[0], { at }), send(b, texts[1], { at })]);
    const sends = await Promise.all([a, b].map(async (p) => (await info(p)).sends[0]));
    const skew = Math.abs(sends[0].calledAt - sends[1].calledAt);
    skews.push(skew);

    const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
    const evidence = async () =>
      `skew ${skew} ms; sends ${JSON.stringify(sends.map(({ text, calledAt, result }) => ({ text, calledAt, result })))}\n` +
      `A's channel: ${JSON.stringify(await channel(a))}\nB's channel: ${JSON.stringify(await channel(b))}\n${await logLines(chatId)}`;
    assert.equal(winners.length, 1, `round ${round}: exactly one send accepted: ${winners.length === 1 ? "" : await evidence()}`);
    const [w] = winners;
    const l = 1 - w;
    assert.deepEqual(refused(results[l]), READ_ONLY, `round ${round}: the other is refused: ${JSON.stringify(results[l])}`);

    const winner = [a, b][w];
    const loser = [a, b][l];
    const end = await turnEnd(winner);
    assert.deepEqual([end.ok, end.text], [true, slowReply(texts[w])], `round ${round}: the winner's reply`);
    assert.deepEqual(await sentMessages(chatId), [texts[w]], `round ${round}: one message reached the agent:\n${await logLines(chatId)}`);
    const log = await chatLog(chatId);
    assert.equal(log.filter((e) => e.path.endsWith("/start")).length, 1, `round ${round}: the refused tab did not even start a session`);
    assert.equal((await chatState(chatId)).turns, 1, `round ${round}: one turn`);
    const loserEvents = (await info(loser)).events;
    assert.ok(loserEvents.includes("message-send-failed(This chat is active in another tab)"), `round ${round}: the loser's events: ${loserEvents}`);
    assert.deepEqual([...a.pageErrors, ...b.pageErrors], [], `round ${round}: no page errors`);
    await Promise.all([a.close(), b.close()]);
  }
  t.diagnostic(`sendMessages calls of the two tabs were ${skews.join(", ")} ms apart (page clocks)`);
  await context.close();
});

// ---- 2. read-only while another tab streams, live copy, then writable --------------------------

test("tab B is read-only while A streams, sees A's reply grow live, and can send once A's turn is over", { timeout: 30_000 }, async () => {
  const context = await browser.newContext();
  const chatId = newChatId("live");
  const a = await openTab(context, "wasm", chatId);
  const b = await openTab(context, "wasm", chatId);

  assert.equal((await send(a, SLOW_PROMPT)).ok, true);
  assert.ok(await waitReadOnly(b, true, 5_000), "B turns read-only soon after A's send");
  assert.ok((await info(b)).readOnlyLog.some((e) => e.value === true), "B's read-only listener was told");
  assert.equal(await isReadOnly(a), false, "A, the writer, is not read-only");

  // A user typing in B meanwhile: refused before anything is sent.
  assert.deepEqual(refused(await send(b, "Can I interrupt?")), READ_ONLY);

  // Live: B's copy of A's reply grows while A streams.
  const seen = await eventually(async () => {
    const n = slowProgress(await lastText(b));
    return n > 0 && n < 35 && n;
  }, { message: "a partial reply mirrored in B" });
  await eventually(async () => slowProgress(await lastText(b)) > seen, { message: "B's copy to grow" });

  const end = await turnEnd(a);
  assert.deepEqual([end.ok, end.text], [true, slowReply()]);
  await eventually(async () => (await lastText(b)) === slowReply(), { timeout: 10_000, message: "the full reply in B" });
  assert.ok(await waitReadOnly(b, false, 10_000), "B becomes writable when A's turn is over");

  // Now B writes, and A follows it.
  const mine = "Hello from B";
  assert.equal((await send(b, mine)).ok, true, "B's send is accepted");
  const bEnd = await turnEnd(b);
  assert.deepEqual([bEnd.ok, bEnd.text], [true, echo(mine)]);
  const all = [["user", SLOW_PROMPT], ["assistant", slowReply()], ["user", mine], ["assistant", echo(mine)]];
  await eventually(async () => JSON.stringify(await a.evaluate(() => harness.texts())) === JSON.stringify(all), {
    timeout: 10_000,
    message: "B's turn mirrored in A",
  });
  assert.deepEqual(await sentMessages(chatId), [SLOW_PROMPT, mine], "B's refused attempt never reached the agent");
  assert.equal((await chatState(chatId)).turns, 2);
  assert.deepEqual([...a.pageErrors, ...b.pageErrors], []);
  await context.close();
});

// ---- 3. the owner dies mid-turn ----------------------------------------------------------------

// A streams a slow reply, B mirrors it; then A goes away without its app cleaning up (the agent
// still finishes A's reply). B's read-only state must clear by itself, B's send must be accepted
// within 15 s, and B's reply must be B's own: neither the rest of A's reply nor the part B
// already shows may come back inside it. `bRepliedBefore`: B wrote a turn of the chat first
// (so it reads `.out` from its own last cursor, not from an unknown position).
const crash = async (context, a) => {
  const crashed = new Promise((resolve) => a.once("crash", resolve));
  const cdp = await context.newCDPSession(a);
  // The renderer dies: no pagehide, unload or dispose runs. The command never answers.
  cdp.send("Page.crash").catch(() => {});
  await crashed;
};

async function ownerGoesAway(t, label, kill, { bRepliedBefore = false } = {}) {
  const context = await browser.newContext();
  const chatId = newChatId(label.replace(/\W+/g, "-"));
  const a = await openTab(context, "wasm", chatId);
  const b = await openTab(context, "wasm", chatId);
  const earlier = [];
  if (bRepliedBefore) {
    const first = "First from B";
    assert.equal((await send(b, first)).ok, true);
    assert.equal((await turnEnd(b)).text, echo(first));
    assert.ok(await waitReadOnly(a, false, 10_000));
    earlier.push(first);
  }
  assert.equal((await send(a, SLOW_PROMPT)).ok, true);
  assert.ok(await waitReadOnly(b, true, 5_000), "B is read-only while A streams");
  await eventually(async () => slowProgress(await lastText(b)) >= 3, { message: "A's partial reply in B" });

  // B's figures depend on its timers: a tab that knows a lock-backed claim checks the lock when
  // the claim would expire (10 s after it last heard of it) or at its own next heartbeat.
  const goneAt = Date.now();
  await kill(context, a);
  const killedIn = Date.now() - goneAt;

  // B's read-only state clears by itself (its banner would go); then the user sends.
  const writableAt = await waitReadOnly(b, false, 15_000);
  const channelSeen = await channel(b);
  assert.ok(writableAt, `B writable within 15 s of A going away; B saw on the channel: ${JSON.stringify(channelSeen)}`);
  const mine = `Hello after ${label}`;
  const result = await send(b, mine);
  assert.equal(result.ok, true, `B's send is accepted: ${JSON.stringify(result)}`);
  const figures = { killedIn, writable: writableAt - goneAt, sent: result.at - goneAt };
  assert.ok(figures.sent <= 15_000, `B could send ${figures.sent} ms after A went away`);
  t.diagnostic(`${label}: A gone in ${killedIn} ms; B writable after ${figures.writable} ms, B's send accepted after ${figures.sent} ms`);

  const end = await turnEnd(b);
  assert.deepEqual(
    [end.ok, end.text],
    [true, echo(mine)],
    `B's reply is B's own; its stream carried: ${JSON.stringify((await info(b)).sends.at(-1).chunks)}`,
  );
  assert.deepEqual(await sentMessages(chatId), [...earlier, SLOW_PROMPT, mine], "no other message reached the agent");
  await eventually(async () => (await chatState(chatId)).turns === earlier.length + 2, { message: "every turn completed" });
  assert.deepEqual(b.pageErrors, []);
  await context.close();
  return figures;
}

test("an owner that crashes mid-turn (no pagehide): its Web Lock dies with it, B can send within 15 s and gets its own reply", { timeout: 40_000 }, async (t) => {
  await ownerGoesAway(t, "a crash", crash);
});

test("an owner whose page is closed mid-turn (runBeforeUnload: false): B can send within 15 s and gets its own reply", { timeout: 40_000 }, async (t) => {
  await ownerGoesAway(t, "a close", (context, a) => a.close({ runBeforeUnload: false }));
});

test("an owner that crashes mid-turn in a chat B wrote before: B can send within 15 s and gets its own reply", { timeout: 40_000 }, async (t) => {
  await ownerGoesAway(t, "a crash after B's turn", crash, { bRepliedBefore: true });
});

// ---- 4. a late tab ---------------------------------------------------------------------------

test("a tab opened while another streams learns the claim as its transport starts", { timeout: 30_000 }, async (t) => {
  const context = await browser.newContext();
  const chatId = newChatId("late");
  const a = await openTab(context, "wasm", chatId);
  assert.equal((await send(a, SLOW_PROMPT)).ok, true);
  await eventually(async () => slowProgress(await lastText(a)) >= 3, { message: "A streaming" });

  // C's transport starts in harness.create (addReadOnlyListener opens its channel and asks `who`).
  const c = await openTab(context, "wasm", chatId);
  const roAt = await waitReadOnly(c, true, 5_000);
  assert.ok(roAt, `C read-only within 5 s; C saw: ${JSON.stringify(await channel(c))}`);
  const learnedIn = roAt - c.created.createdAt;
  assert.ok(learnedIn <= 5_000);
  t.diagnostic(`late tab C read-only ${learnedIn} ms after its transport was created`);
  assert.deepEqual(refused(await send(c, "Me too")), READ_ONLY, "C's send is refused");

  assert.deepEqual([(await turnEnd(a)).text], [slowReply()]);
  await eventually(async () => (await lastText(c)) === slowReply(), { timeout: 10_000, message: "the full reply in C" });
  assert.ok(await waitReadOnly(c, false, 10_000), "C writable once A's turn is over");
  assert.deepEqual(await sentMessages(chatId), [SLOW_PROMPT]);
  assert.deepEqual([...a.pageErrors, ...c.pageErrors], []);
  await context.close();
});

// ---- 5. the official JS transport in another tab ------------------------------------------------
//
// The JS coordinator (inventory §2) knows only claim / release / heartbeat: it never asks or
// answers `who` (M3), and a heartbeat refreshes a claim it already knows but never creates one.
// So both tabs are opened before either sends; a JS tab opened later is the next test.

test("a tab with the official JS transport and a tab with ours respect each other's claims", { timeout: 40_000 }, async () => {
  const context = await browser.newContext();
  const chatId = newChatId("js-interop");
  const js = await openTab(context, "official", chatId);
  const ours = await openTab(context, "wasm", chatId);

  // The JS tab streams: ours is read-only and refuses a send without reaching the server.
  // (No colon in these texts: slowProgress reads the numbers after the reply's first ": ".)
  const jsText = "The JS tab says tell me something slow";
  assert.equal((await send(js, jsText)).ok, true);
  assert.ok(await waitReadOnly(ours, true, 5_000), "ours is read-only soon after the JS tab's claim");
  assert.deepEqual(refused(await send(ours, "Our tab says me too")), READ_ONLY);
  await eventually(async () => slowProgress(await lastText(ours)) > 0, { message: "the JS tab's reply mirrored in ours" });
  assert.deepEqual(await sentMessages(chatId), [jsText], "only the JS tab's message reached the agent");
  const jsEnd = await turnEnd(js);
  assert.deepEqual([jsEnd.ok, jsEnd.text], [true, slowReply(jsText)]);
  assert.ok(await waitReadOnly(ours, false, 10_000), "ours is writable after the JS tab's turn-complete release");
  await eventually(async () => (await lastText(ours)) === slowReply(jsText), { timeout: 10_000, message: "the JS tab's full reply in ours" });

  // Ours streams: the JS tab is read-only and its send throws.
  const oursText = "Our tab says tell me something slow";
  assert.equal((await send(ours, oursText)).ok, true);
  assert.ok(await waitReadOnly(js, true, 5_000), "the JS tab is read-only soon after our claim");
  const jsTry = await send(js, "The JS tab says me too");
  assert.deepEqual([jsTry.ok, jsTry.message], [false, "This chat is active in another tab"]);
  const oursEnd = await turnEnd(ours);
  assert.deepEqual([oursEnd.ok, oursEnd.text], [true, slowReply(oursText)]);
  assert.ok(await waitReadOnly(js, false, 10_000), "the JS tab is writable after our release");
  assert.deepEqual(await sentMessages(chatId), [jsText, oursText], `two turns, one writer at a time:\n${await logLines(chatId)}`);
  assert.equal((await chatState(chatId)).turns, 2);
  assert.deepEqual([...js.pageErrors, ...ours.pageErrors], []);
  await context.close();
});

// The JS coordinator learns an owner only from a `claim` (a heartbeat of an unknown tab is
// ignored, `who` is ignored), so a JS tab opened while ours owns the chat can learn it only if
// our periodic announcement reaches it as something it reads. Our owner announces itself every
// 5 s (HEARTBEAT_INTERVAL_MS − 250 ms slack), so by 6.5 s after the JS tab opened it must be
// read-only. Our reply is left unread meanwhile (a consumer slow to pull keeps the turn, and
// the claim, open past one announcement: the slow reply alone lasts only ~4 s).
test("a JS tab opened while ours owns the chat is read-only by our next announcement (≤ 6.5 s)", { timeout: 30_000 }, async () => {
  const context = await browser.newContext();
  const chatId = newChatId("late-js");
  const ours = await openTab(context, "wasm", chatId);
  assert.equal((await send(ours, SLOW_PROMPT, { read: false })).ok, true);
  const js = await openTab(context, "official", chatId);
  const roAt = await waitReadOnly(js, true, 6_500);
  const seen = await channel(js);
  const jsTry = roAt ? null : await send(js, "Hello from the late JS tab");
  await ours.evaluate(() => harness.readReply());
  await turnEnd(ours);
  await new Promise((r) => setTimeout(r, 500));
  const sent = await sentMessages(chatId);
  assert.ok(
    roAt,
    `the late JS tab is still writable 6.5 s after opening while ours holds the chat; ` +
      `what the JS tab's page saw on the channel: ${JSON.stringify(seen)}; ` +
      `its send then: ${JSON.stringify(jsTry)}; messages that reached the agent: ${JSON.stringify(sent)}`,
  );
  assert.deepEqual(sent, [SLOW_PROMPT]);
  await context.close();
});

// ---- the harness where a page is set up unusually ----------------------------------------------
// - inside a sandboxed iframe (an opaque origin), where `navigator.locks` exists but refuses every
//   request, a `multiTab` transport must still send instead of calling itself read-only;
// - with its `.wasm` served from elsewhere, `init(url)` called after a transport was built (which
//   already started loading the module from the default place) must be the place it loads from.

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
  assert.equal((await send(frame, "hello from a sandbox")).ok, true);
  const end = await turnEnd(frame);
  assert.equal(end.ok, true, JSON.stringify(end));
  assert.equal(end.text, echo("hello from a sandbox"));
  const info = await frame.evaluate(() => harness.info());
  assert.equal(info.isReadOnly, false);
  assert.deepEqual(errors, []);
  await page.close();
});

test("init(promise of a url) after a transport was built loads the module from that url", { timeout: 30_000 }, async () => {
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
  assert.equal((await send(page, "hello")).ok, true);
  const end = await turnEnd(page);
  assert.equal(end.ok, true, JSON.stringify(end));
  assert.equal(end.text, echo("hello"));
  assert.ok(wasmRequests.includes("/elsewhere/module.wasm"), `loaded from init's url: ${wasmRequests}`);
  assert.deepEqual(errors, []);
  await page.close();
});
