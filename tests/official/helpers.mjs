// Shared helpers of the suite: start chat-devserver, build a transport (the official one or ours,
// see transports.mjs) the way a real app does (startSession / accessToken call the server's
// customer endpoints over HTTP), run a scenario once per transport, and read streams with the AI
// SDK's own reducer.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { AbstractChat, readUIMessageStream } from "ai";
import { transports } from "./transports.mjs";

export const SECRET_KEY = "tr_dev_emulator_secret";
export const TASK_ID = "ai-chat";

/** Starts `chat-devserver --port 0 ...args` and waits for its `listening on` line. */
export async function startServer(args = []) {
  const bin = process.env.CHAT_DEVSERVER_BIN;
  if (!bin) throw new Error("CHAT_DEVSERVER_BIN is not set (use tests/official/run)");
  const child = spawn(bin, ["--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let buffered = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 10_000);
    child.stdout.on("data", (d) => {
      buffered += d;
      const m = /^listening on (http:\/\/\S+)$/m.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/** A fresh chat id per test, so tests sharing a server never meet. */
export const newChatId = (label = "chat") => `${label}-${randomUUID()}`;

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Calls a test-only admin route. */
export async function admin(url, path, { method = "GET", body } = {}) {
  const res = await fetch(`${url}/__admin${path}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
  return json(res);
}

export const setFaults = (url, chatId, faults) =>
  admin(url, `/chats/${encodeURIComponent(chatId)}/faults`, { method: "POST", body: faults });
export const chatState = (url, chatId) => admin(url, `/chats/${encodeURIComponent(chatId)}/state`);
export const requestLog = (url, chatId) => admin(url, `/chats/${encodeURIComponent(chatId)}/log`);

/** What a backend does with the secret key: close the session. */
export async function closeSession(url, chatId, reason) {
  const res = await fetch(`${url}/api/v1/sessions/${encodeURIComponent(chatId)}/close`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify(reason ? { reason } : {}),
  });
  if (!res.ok) throw new Error(`close: ${res.status}`);
  return res.json();
}

/**
 * One scenario, run once per transport (transports.mjs), side by side: a `describe` named after
 * the scenario with one test per transport, run concurrently (every test has its own chat id).
 * `todo: { official: "W7: …" }` marks a documented weakness of that transport
 * (shared/reference/js-transport-inventory.md §4): the test still asserts the correct behaviour,
 * is reported, and does not fail the run. `skip: { official: "why" }` leaves a transport out of
 * a scenario about an option it does not have. `fn(impl, t)` gets the transport entry and the
 * test context.
 */
export function scenario(name, { timeout = 15_000, todo = {}, skip = {} } = {}, fn) {
  describe(name, { concurrency: true }, () => {
    for (const impl of transports) {
      const options = { timeout: timeout + 5_000, todo: todo[impl.name], skip: skip[impl.name] };
      test(impl.name, options, (t) => withDeadline(fn(impl, t), timeout));
    }
  });
}

// A scenario that hangs fails with its own error before node:test's timeout, which TAP would
// count as `cancelled` rather than `fail` (scripts/test sums `# fail`).
async function withDeadline(promise, ms) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the scenario did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A transport (`impl` from transports.mjs) wired like a real app: `startSession` → POST
 * /api/chat/{id}/start, `accessToken` → POST /api/chat/{id}/token. Records events and the
 * sessions handed to `onSessionChange` (an app's own database; `null` once removed).
 */
export function makeTransport(impl, url, options = {}, { retain = true } = {}) {
  const events = [];
  const persisted = {};
  const calls = { start: 0, token: 0 };
  const transport = impl.create({
    task: TASK_ID,
    baseURL: url,
    startSession: async ({ chatId, taskId, clientData }) => {
      calls.start++;
      const res = await fetch(`${url}/api/chat/${encodeURIComponent(chatId)}/start`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ taskId, clientData }),
      });
      if (!res.ok) throw new Error(`start failed: ${res.status} ${await res.text()}`);
      return res.json();
    },
    accessToken: async ({ chatId }) => {
      calls.token++;
      const res = await fetch(`${url}/api/chat/${encodeURIComponent(chatId)}/token`, {
        method: "POST",
      });
      if (!res.ok) throw new Error(`token failed: ${res.status}`);
      return (await res.json()).publicAccessToken;
    },
    onEvent: (e) => events.push(e),
    onSessionChange: (chatId, session) => {
      persisted[chatId] = session ? structuredClone(session) : null;
    },
    ...options,
  });
  if (retain) retained.add(transport);
  return { transport, events, persisted, calls };
}

// Every transport made here stays reachable until the test file ends, as an app's does while
// its chat is on screen; "a stream outlives its transport" drops one on purpose (`retain: false`).
const retained = new Set();

/** Runs a full garbage collection (FinalizationRegistry callbacks follow on a later task). */
export async function forceGc() {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export const userMessage = (text, id = `u-${randomUUID()}`) => ({
  id,
  role: "user",
  parts: [{ type: "text", text }],
});

/** `transport.sendMessages` as `useChat` calls it for a new user message. */
export function send(transport, chatId, messages, extra = {}) {
  return transport.sendMessages({
    trigger: "submit-message",
    chatId,
    messageId: undefined,
    messages,
    abortSignal: undefined,
    ...extra,
  });
}

/** Reads a chunk stream to the end with the AI SDK reducer; returns the last message and chunks. */
export async function collect(stream, { message, onError } = {}) {
  const chunks = [];
  const tapped = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  let last;
  for await (const m of readUIMessageStream({ stream: tapped, message, onError })) last = m;
  return { message: last, chunks };
}

/** The visible text of a UIMessage. */
export const textOf = (message) =>
  (message?.parts ?? [])
    .filter((p) => p.type === "text")
    .map((p) => p.text)
    .join("");

/** Reads `n` chunks from a stream reader (for mid-turn actions). */
export async function readChunks(reader, n) {
  const got = [];
  while (got.length < n) {
    const { done, value } = await reader.read();
    if (done) break;
    got.push(value);
  }
  return got;
}

/** Reads until a chunk matches. */
export async function readUntil(reader, predicate) {
  const got = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return got;
    got.push(value);
    if (predicate(value)) return got;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `ms` passes. */
export async function eventually(fn, ms = 5_000, stepMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(stepMs);
  }
}

/** The expected reply texts of the scripted agent (see www/server/README.md). */
export const echo = (text) => `You said: ${text}`;
export const slowReply = (text) =>
  `Slow reply to ${JSON.stringify(text)}: ${Array.from({ length: 40 }, (_, i) => i + 1).join(" ")}.`;

/** Requests in the log that hit `.in/append` / `.out`. */
export const appends = (log) => log.filter((r) => r.method === "POST" && r.path.includes("/in/append"));
export const outs = (log) => log.filter((r) => r.method === "GET" && r.path.endsWith("/out"));

/** The AI SDK's `ChatState`, kept in memory (what `useChat`'s React state does in a page). */
class MemoryChatState {
  constructor(messages = []) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
    this.experimental_queuedMessages = [];
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

/**
 * The AI SDK's `AbstractChat` (what `useChat` drives) over an in-memory state:
 * `new Chat({ id, messages, transport })`, then `sendMessage`, `resumeStream`, `messages`.
 */
export class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new MemoryChatState(messages) });
  }
}

/** A `{ load, save, remove }` persistence store over a Map, like an app's own database. */
export function mapStore(map, { failSaves = false } = {}) {
  return {
    load: (chatId) => map.get(chatId),
    save: (chatId, session) => {
      if (failSaves) throw new Error("quota exceeded");
      map.set(chatId, structuredClone(session));
    },
    remove: (chatId) => map.delete(chatId),
  };
}
