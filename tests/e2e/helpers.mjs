// Shared helpers of the end-to-end suite: a real Chromium (playwright-core + /usr/bin/chromium)
// driving the built demo (www/dist) served by chat-devserver, which tests/e2e/run starts and
// passes as E2E_URL. Everything is asserted through what a user sees, plus the server's admin
// API for what the agent did.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const OUT_DIR = join(ROOT, "target", "e2e");
mkdirSync(OUT_DIR, { recursive: true });

export function serverUrl() {
  const url = process.env.E2E_URL;
  if (!url) throw new Error("E2E_URL is not set: run tests/e2e/run");
  return url.replace(/\/$/, "");
}

// TOOLCHAIN.md: the Debian Chromium, never a downloaded one, with these flags.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/** A fresh browser profile (its own localStorage, BroadcastChannel scope). */
export async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(15_000);
  return context;
}

export const newChatId = (label) => `e2e-${label}-${randomUUID().slice(0, 8)}`;

/** Opens the demo on a chat and waits for it to be interactive. Page errors fail the test. */
/** Opens the demo on `chatId`; `query` (e.g. `"?tabs=queue"`) sets the demo's options. */
export async function openChat(context, chatId, query = "") {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  page.pageErrors = errors;
  await page.goto(`${serverUrl()}/${query}#/chat/${encodeURIComponent(chatId)}`);
  await page.waitForSelector(`[data-testid="chat"][data-chat-id="${chatId}"]`);
  return page;
}

export async function reload(page, chatId) {
  await page.reload();
  await page.waitForSelector(`[data-testid="chat"][data-chat-id="${chatId}"]`);
}

/** Types into the composer and presses Enter, as a user does. */
export async function send(page, text) {
  const composer = page.getByTestId("composer");
  await composer.fill(text);
  await composer.press("Enter");
}

/** `[{role, text}]` of the rendered messages. */
export function transcript(page) {
  return page.$$eval('[data-testid="message"]', (nodes) =>
    nodes.map((node) => ({
      role: node.getAttribute("data-role"),
      id: node.getAttribute("data-message-id"),
      text: [...node.querySelectorAll('[data-testid="text"]')].map((p) => p.textContent).join("\n"),
    })),
  );
}

export async function lastAssistantText(page) {
  const messages = await transcript(page);
  return messages.filter((m) => m.role === "assistant").at(-1)?.text ?? "";
}

/** Polls `check` until it returns a truthy value (returned), or fails with the last value. */
export async function eventually(check, { timeout = 15_000, interval = 50, message = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${message}; last value: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export async function isVisible(page, testId) {
  return page.getByTestId(testId).isVisible();
}

/** The scripted agent's answers (www/server/src/agent/script.rs). */
export const echo = (text) => `You said: ${text}`;
export const SLOW_PROMPT = "Tell me something slow";
export const slowReply = (text = SLOW_PROMPT) =>
  `Slow reply to ${JSON.stringify(text)}: ${Array.from({ length: 40 }, (_, i) => i + 1).join(" ")}.`;
/** How many of the 40 numbers of a slow reply are visible. */
export const slowProgress = (text) => (/: ([\d ]*)/.exec(text)?.[1].trim().split(/\s+/).filter(Boolean).length ?? 0);

// ---- server admin API (test-only routes of chat-devserver) -----------------------------------
export async function admin(path, { method = "GET", body } = {}) {
  const res = await fetch(`${serverUrl()}/__admin${path}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

export const chatState = (chatId) => admin(`/chats/${encodeURIComponent(chatId)}/state`);
export const requestLog = (chatId) => admin(`/chats/${encodeURIComponent(chatId)}/log`);
export const setFaults = (chatId, faults) =>
  admin(`/chats/${encodeURIComponent(chatId)}/faults`, { method: "POST", body: faults });

/** The `.in` records of a chat that carry a message payload with this trigger. */
export async function inRecords(chatId) {
  return (await chatState(chatId)).inRecords ?? [];
}

export function screenshotPath(name) {
  return join(OUT_DIR, name);
}

/**
 * Starts another chat-devserver (CHAT_DEVSERVER_BIN, set by tests/e2e/run) serving `staticDir`;
 * resolves to `{url, stop}`.
 */
export async function serve(staticDir) {
  const bin = process.env.CHAT_DEVSERVER_BIN;
  if (!bin) throw new Error("CHAT_DEVSERVER_BIN is not set: run tests/e2e/run");
  const server = spawn(bin, ["--port", "0", "--static-dir", staticDir], { stdio: ["ignore", "pipe", "ignore"] });
  let buffered = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chat-devserver did not start")), 10_000);
    server.on("exit", (code) => reject(new Error(`chat-devserver exited (${code})`)));
    server.stdout.on("data", (d) => {
      buffered += d;
      const m = /^listening on (http:\/\/\S+)$/m.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    url,
    async stop() {
      if (server.exitCode !== null) return;
      server.kill("SIGTERM");
      await once(server, "exit");
    },
  };
}
