// scripts/bench, the Node half: builds the bench pages, starts chat-devserver serving them,
// drives headless Chromium (playwright-core, Debian's /usr/bin/chromium) through every case with
// the implementations interleaved round by round, then prints a Markdown report and writes the
// raw results to bench/results/latest.json.
//
// Environment (scripts/bench sets the first two):
//   CHAT_DEVSERVER_BIN      the server binary (a release build)
//   TRIGGER_CHAT_WASM_PKG   our built package (default: <root>/pkg)
//   BENCH_ROUNDS            rounds of throughput and time to first chunk (default 3)
//   BENCH_HEAVY_ROUNDS      rounds of per-chunk delay, 100 turns, slow consumer (default 2)
//   BENCH_SLOW_ROUNDS       rounds of the 1M-record turn and of tabs (default 1; the official
//                           transport takes ~25 s per 1M turn, the tab case waits on 4 s replies)
//   BENCH_CASES             a comma list of cases to run (default: all; see CASES below)
//   BENCH_OUT               where to write the JSON (default bench/results/latest.json)
//   CHROMIUM_PATH           default /usr/bin/chromium
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { DIST, buildPages, officialSize } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const env = process.env;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const HEAVY_ROUNDS = Number(env.BENCH_HEAVY_ROUNDS ?? 2);
const SLOW_ROUNDS = Number(env.BENCH_SLOW_ROUNDS ?? 1);
const PKG = resolve(env.TRIGGER_CHAT_WASM_PKG ?? join(root, "pkg"));
const OUT = resolve(env.BENCH_OUT ?? join(here, "results", "latest.json"));
const SERVER = env.CHAT_DEVSERVER_BIN;
if (!SERVER) throw new Error("CHAT_DEVSERVER_BIN is not set (run scripts/bench)");

// TOOLCHAIN.md's flags, plus what the memory cases need: exact performance.memory and gc().
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--enable-precise-memory-info",
  "--js-flags=--expose-gc",
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error("bench:", ...a);
const started = Date.now();

// ---------------------------------------------------------------- statistics

const sorted = (xs) => xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
function quantile(xs, q) {
  const s = sorted(xs);
  if (!s.length) return null;
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo);
}
const median = (xs) => quantile(xs, 0.5);
function stat(xs) {
  const s = sorted(xs);
  return s.length ? { median: median(s), min: s[0], max: s[s.length - 1], n: s.length, values: xs } : null;
}

// ---------------------------------------------------------------- server

async function startServer() {
  const child = spawn(SERVER, ["--port", "0", "--static-dir", DIST], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let buffered = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15_000);
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
  let stopping = false;
  let exited = null;
  child.on("exit", (code, signal) => {
    if (stopping) return;
    exited = `chat-devserver exited unexpectedly (code ${code}, signal ${signal}); stderr: ${stderr.slice(-2000) || "(empty)"}`;
    log(exited);
  });
  return {
    url,
    /** Why the server is gone, or null. */
    exited: () => exited,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

let URL_;
let SERVER_PROC;
const serverRestarts = [];

// Something outside the bench may end the server (it never exits on its own): start a new one,
// note it in the report, and go on (the run that was hit reports its error).
async function ensureServer() {
  const why = SERVER_PROC.exited();
  if (!why) return;
  serverRestarts.push({ at: new Date().toISOString(), why });
  SERVER_PROC = await startServer();
  URL_ = SERVER_PROC.url;
  log(`restarted chat-devserver at ${URL_}`);
}
async function admin(path, { method = "GET", body } = {}) {
  const res = await fetch(`${URL_}/__admin${path}`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
const chatPath = (chatId) => `/chats/${encodeURIComponent(chatId)}`;
const setFaults = (chatId, faults) => admin(`${chatPath(chatId)}/faults`, { method: "POST", body: faults });
const chatState = (chatId) => admin(`${chatPath(chatId)}/state`);
const requestLog = (chatId) => admin(`${chatPath(chatId)}/log`);
const reset = () => admin("/reset", { method: "POST" });

/** The chat's records as the server stored them ({seq_num, timestamp, headers, body}). */
async function serverRecords(chatId) {
  const t = await fetch(`${URL_}/api/chat/${encodeURIComponent(chatId)}/token`, { method: "POST" });
  const { publicAccessToken } = await t.json();
  const res = await fetch(`${URL_}/realtime/v1/sessions/${encodeURIComponent(chatId)}/out`, {
    headers: { Authorization: `Bearer ${publicAccessToken}`, Accept: "text/event-stream", "X-Peek-Settled": "1" },
  });
  const text = await res.text();
  const records = [];
  for (const event of text.split("\n\n")) {
    const lines = event.split("\n");
    if (!lines.includes("event: batch")) continue;
    const data = lines.find((l) => l.startsWith("data:"));
    records.push(...JSON.parse(data.slice(5)).records);
  }
  return records;
}

// ---------------------------------------------------------------- browser

let browser;
const pageErrors = [];

async function openPage(impl, { context, query = "" } = {}) {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${impl}: ${e.message}`));
  await page.goto(`${URL_}/${impl}/index.html${query}`);
  await page.waitForFunction(() => window.bench?.ready === true, null, { timeout: 15_000 });
  return { ctx, page };
}

const call = (page, fn, arg) => page.evaluate(([fn, arg]) => window.bench[fn](arg), [fn, arg]);

/** Main-thread time from the DevTools Performance domain (thread CPU time, seconds → ms). */
async function cpuMeter(ctx, page) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
  const read = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    return { task: m.TaskDuration * 1000, script: m.ScriptDuration * 1000 };
  };
  return read;
}

let chatSeq = 0;
const newChat = (label) => `bench-${label}-${++chatSeq}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Runs `fn(impl, round)` for every implementation, `rounds` times, interleaved: round r runs the
 * implementations in an order rotated by r (A B C, B C A, C A B, …), each in a fresh browser
 * context, and resets the server after each run. Returns { impl: [result, …] }.
 */
async function interleave(name, impls, rounds, fn) {
  const out = Object.fromEntries(impls.map((i) => [i, []]));
  for (let r = 0; r < rounds; r++) {
    const order = impls.map((_, k) => impls[(k + r) % impls.length]);
    for (const impl of order) {
      await ensureServer();
      const t = Date.now();
      try {
        out[impl].push(await fn(impl, r));
      } catch (e) {
        log(`${name} ${impl} round ${r + 1}: ${e.stack ?? e}`);
        out[impl].push({ error: String(e?.message ?? e) });
      }
      await reset().catch(() => {});
      log(`${name}: ${impl} round ${r + 1}/${rounds} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    }
  }
  return out;
}

async function withPage(impl, fn, options) {
  const { ctx, page } = await openPage(impl, options);
  try {
    return await fn(page, ctx);
  } finally {
    await ctx.close();
  }
}

// ---------------------------------------------------------------- cases

const ALL = ["ours", "official", "raw"];
const TRANSPORTS = ["ours", "official"];

function checkStream(r, deltas) {
  if (r.deltas !== deltas || !r.sawFinish) {
    throw new Error(`incomplete stream: ${r.deltas}/${deltas} text-deltas, finish ${r.sawFinish}`);
  }
}

/** Throughput: one turn of N text-deltas read as fast as possible. */
const throughput = (count, size) => async (impl) =>
  withPage(impl, async (page, ctx) => {
    // Warm the code paths once (JIT, connection) on another chat.
    await call(page, "turn", { chatId: newChat("warm"), text: "stream 5000" });
    const cpu = await cpuMeter(ctx, page);
    const text = size ? `stream ${count} size ${size}` : `stream ${count}`;
    const c0 = await cpu();
    const r = await call(page, "turn", { chatId: newChat("tp"), text });
    const c1 = await cpu();
    checkStream(r, count);
    return {
      chunks: r.chunks,
      deltaChars: r.deltaChars,
      totalMs: r.totalMs,
      firstChunkMs: r.firstChunkMs,
      chunksPerSec: r.chunks / (r.totalMs / 1000),
      mbPerSec: r.deltaChars / 1e6 / (r.totalMs / 1000),
      longTasks: r.longTasks,
      mainThreadCpuMs: c1.task - c0.task,
      scriptCpuMs: c1.script - c0.script,
    };
  });

/** Time to first chunk, cold (first send: startSession too) and warm (a second send). */
const ttfc = (latencyMs) => async (impl) =>
  withPage(impl, async (page) => {
    await call(page, "turn", { chatId: newChat("warm"), text: "hello" });
    const chatId = newChat("ttfc");
    if (latencyMs) await setFaults(chatId, { latencyMs });
    const cold = await call(page, "turn", { chatId, text: "hello" });
    const warm = await call(page, "turn", { chatId, text: "hello again" });
    return { coldMs: cold.firstChunkMs, warmMs: warm.firstChunkMs, warmResolvedMs: warm.resolvedMs };
  });

/** Per-chunk delay: the paced `slow` reply (40 deltas, 100 ms apart), server record timestamp → read. */
const delay = async (impl) =>
  withPage(impl, async (page) => {
    await call(page, "turn", { chatId: newChat("warm"), text: "hello" });
    const chatId = newChat("delay");
    const r = await call(page, "turn", { chatId, text: "slow please", delays: true });
    const records = await serverRecords(chatId);
    const stamps = records
      .filter((x) => !x.headers?.length && x.body)
      .map((x) => ({ ts: x.timestamp, chunk: JSON.parse(x.body).data }))
      .filter((x) => x.chunk?.type === "text-delta")
      .map((x) => x.ts);
    if (stamps.length !== r.deltaTimes.length) {
      throw new Error(`${r.deltaTimes.length} deltas read, ${stamps.length} on the server`);
    }
    const delays = r.deltaTimes.map((t, i) => t - stamps[i]);
    return { delays, p50: quantile(delays, 0.5), p99: quantile(delays, 0.99), max: Math.max(...delays) };
  });

/** Memory over a 1,000,000-record turn read as fast as possible. */
const memoryStream = async (impl) =>
  withPage(impl, async (page) => {
    await call(page, "turn", { chatId: newChat("warm"), text: "stream 5000" });
    await call(page, "gc");
    const before = await call(page, "mem");
    const r = await call(page, "turn", { chatId: newChat("mem"), text: "stream 1000000", sampleEvery: 100_000 });
    checkStream(r, 1_000_000);
    const atEnd = await call(page, "mem");
    await call(page, "gc");
    const after = await call(page, "mem");
    const heaps = [before.jsHeap, ...r.samples.map((s) => s.jsHeap), atEnd.jsHeap];
    const wasms = [before.wasm, ...r.samples.map((s) => s.wasm), atEnd.wasm];
    return {
      totalMs: r.totalMs,
      before,
      samples: r.samples,
      after,
      jsHeapPeak: Math.max(...heaps),
      jsHeapGrowthAfterGc: after.jsHeap - before.jsHeap,
      wasmPeak: before.wasm === null ? null : Math.max(...wasms),
      wasmGrowth: before.wasm === null ? null : Math.max(...wasms, after.wasm) - before.wasm,
    };
  });

/** Memory after 100 short turns on one chat (one transport). */
const memoryTurns = async (impl) =>
  withPage(impl, async (page) => {
    const r = await call(page, "turns", { chatId: newChat("turns"), n: 100 });
    return {
      ...r,
      jsHeapGrowth: r.after.jsHeap - r.before.jsHeap,
      wasmGrowth: r.before.wasm === null ? null : r.after.wasm - r.before.wasm,
    };
  });

/**
 * A deliberately slow consumer: one chunk every 50 ms for 3 s of a 1,000,000-record turn. The
 * server's `lastSeq` shows how far the agent got; it runs at most 50,000 records ahead of the
 * fastest reader, so it tells how much the client pulled off the network.
 */
const slowConsumer = async (impl) =>
  withPage(impl, async (page) => {
    await call(page, "turn", { chatId: newChat("warm"), text: "stream 5000" });
    await call(page, "gc");
    const chatId = newChat("slow");
    const before = await call(page, "mem");
    const running = call(page, "turn", { chatId, text: "stream 1000000", slowMs: 50, durationMs: 3000 });
    await sleep(2900);
    const state = await chatState(chatId);
    const r = await running;
    const last = r.samples[r.samples.length - 1] ?? r.after;
    return {
      consumed: r.chunks,
      serverSeqAt3s: state.lastSeq,
      before,
      samples: r.samples,
      jsHeapGrowth: last.jsHeap - before.jsHeap,
      wasmGrowth: before.wasm === null ? null : last.wasm - before.wasm,
    };
  });

/** Polls the chat's open .out connections until `done()`; returns the max seen. */
async function watchConnections(chatId, done, limitMs = 15_000) {
  let max = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const s = await chatState(chatId);
    max = Math.max(max, s.openOutConnections ?? 0);
    if (await done()) break;
    await sleep(50);
  }
  return max;
}

const outRequests = async (chatId) =>
  (await requestLog(chatId)).filter((r) => r.method === "GET" && r.path.endsWith("/out")).length;

/**
 * Three tabs (pages of one browser context) on one chat, `multiTab: true`.
 *   idle:    A, B, C open; A sends a slow reply (4 s) while B and C sit on the chat.
 *   resumed: A sends another; 1 s in, B and C reload and resume as useChat({ resume: true }) does.
 */
const tabs = async (impl) => {
  const ctx = await browser.newContext();
  try {
    const chatId = newChat("tabs");
    const query = "?multiTab";
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push((await openPage(impl, { context: ctx, query })).page);
    const [a, b, c] = pages;
    for (const p of pages) await call(p, "tabOpen", { chatId });
    const idleOf = async (p) => (await call(p, "tabStatus", { chatId })).reading === 0;
    const quiet = async () => (await Promise.all(pages.map(idleOf))).every(Boolean) && !(await chatState(chatId)).currentTurnActive;

    const sent1 = await call(a, "tabSend", { chatId, text: "slow one" });
    if (!sent1.sent) throw new Error(`send: ${sent1.error}`);
    await sleep(300);
    const readOnly = [await call(b, "tabStatus", { chatId }), await call(c, "tabStatus", { chatId })].map((s) => s.readOnly);
    const idleMax = await watchConnections(chatId, quiet);
    const idleRequests = await outRequests(chatId);

    const sent2 = await call(a, "tabSend", { chatId, text: "slow two" });
    if (!sent2.sent) throw new Error(`second send: ${sent2.error}`);
    await sleep(1000);
    const resumed = [];
    for (const p of [b, c]) {
      await p.reload();
      await p.waitForFunction(() => window.bench?.ready === true);
      resumed.push((await call(p, "tabOpen", { chatId })).resumed);
    }
    const resumedMax = await watchConnections(chatId, quiet);
    const resumedRequests = (await outRequests(chatId)) - idleRequests;
    const state = await chatState(chatId);
    return { idleMax, idleRequests, readOnly, resumedMax, resumedRequests, resumed, turns: state.turns };
  } finally {
    await ctx.close();
  }
};

/**
 * A reload after a long reply, replayed through the AI SDK's Chat (harness `replay`): ours as it
 * ships (deltas that arrive together are merged), ours with one chunk per record
 * (`coalesceDeltas: false`), and the official transport.
 */
const replay = (count) => async (impl) => {
  const [dir, query] = { ours: ["ours", "?coalesce"], "ours-per-record": ["ours", ""] }[impl] ?? [impl, ""];
  return withPage(
    dir,
    async (page, ctx) => {
      await call(page, "replay", { chatId: newChat("warm"), text: "stream 2000" });
      const cpu = await cpuMeter(ctx, page);
      const c0 = await cpu();
      const r = await call(page, "replay", { chatId: newChat("replay"), text: `stream ${count}` });
      const c1 = await cpu();
      if (r.errors.length || r.status !== "ready" || r.roles.join() !== "user,assistant") {
        throw new Error(`replay: status ${r.status}, messages ${r.roles.join()}, errors ${r.errors.join("; ")}`);
      }
      return { ...r, mainThreadCpuMs: c1.task - c0.task };
    },
    { query },
  );
};

const CASES = {
  throughput100k: { impls: ALL, rounds: ROUNDS, fn: throughput(100_000) },
  throughput4k: { impls: ALL, rounds: ROUNDS, fn: throughput(10_000, 4096) },
  ttfc0: { impls: ALL, rounds: ROUNDS, fn: ttfc(0) },
  ttfc50: { impls: ALL, rounds: ROUNDS, fn: ttfc(50) },
  delay: { impls: ALL, rounds: HEAVY_ROUNDS, fn: delay },
  memory1m: { impls: TRANSPORTS, rounds: SLOW_ROUNDS, fn: memoryStream },
  memoryTurns: { impls: TRANSPORTS, rounds: HEAVY_ROUNDS, fn: memoryTurns },
  slowConsumer: { impls: ALL, rounds: HEAVY_ROUNDS, fn: slowConsumer },
  tabs: { impls: TRANSPORTS, rounds: SLOW_ROUNDS, fn: tabs },
  replay5k: { impls: ["ours", "ours-per-record", "official"], rounds: HEAVY_ROUNDS, fn: replay(5_000) },
};

// ---------------------------------------------------------------- machine

function commit() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "pkg-template", "www/server", "Cargo.toml", "Cargo.lock"], { cwd: root, encoding: "utf8" }).trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return "unknown";
  }
}

function machine(browserVersion) {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  let nproc = os.availableParallelism?.() ?? os.cpus().length;
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {}
  return {
    nproc,
    cpu: model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    chromium: browserVersion,
    loadavg: os.loadavg(),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const only = env.BENCH_CASES ? env.BENCH_CASES.split(",").map((s) => s.trim()) : Object.keys(CASES);
  for (const name of only) if (!CASES[name]) throw new Error(`BENCH_CASES: unknown case ${name}`);

  log("building the bench pages");
  await buildPages(PKG);
  const sizes = {
    ours: JSON.parse(execFileSync(process.execPath, [join(root, "scripts", "size.mjs"), PKG, "--json"], { cwd: root, encoding: "utf8" })),
    official: await officialSize(),
  };

  SERVER_PROC = await startServer();
  URL_ = SERVER_PROC.url;
  browser = await chromium.launch({ executablePath: env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const results = {};
  const loadByCase = {};
  let env0;
  try {
    const probe = await openPage("ours");
    env0 = await call(probe.page, "env");
    await probe.ctx.close();
    const loadBefore = os.loadavg();
    for (const name of only) {
      const { impls, rounds, fn } = CASES[name];
      log(`case ${name}: ${impls.join(" / ")}, ${rounds} rounds`);
      loadByCase[name] = os.loadavg()[0];
      results[name] = await interleave(name, impls, rounds, fn);
    }
    const report = {
      date: new Date().toISOString(),
      command: env.BENCH_COMMAND ?? "node bench/run.mjs",
      commit: commit(),
      machine: { ...machine(browser.version()), loadavgBefore: loadBefore, loadavgAfter: os.loadavg(), load1AtCaseStart: loadByCase },
      page: env0,
      config: { rounds: ROUNDS, heavyRounds: HEAVY_ROUNDS, slowRounds: SLOW_ROUNDS, pkg: PKG, server: SERVER, cases: only },
      sizes,
      results,
      pageErrors,
      serverRestarts,
      runSeconds: (Date.now() - started) / 1000,
    };
    report.summary = summarize(report);
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(report, null, 2) + "\n");
    console.log(markdown(report));
    log(`raw results: ${OUT}`);
  } finally {
    await browser.close();
    await SERVER_PROC.stop();
  }
}

// ---------------------------------------------------------------- report

const ok = (runs) => runs.filter((r) => r && !r.error);
const pick = (runs, f) => ok(runs).map(f);

function summarize({ results, sizes }) {
  const s = {};
  const R = results;
  for (const k of ["throughput100k", "throughput4k"]) {
    if (!R[k]) continue;
    s[k] = {};
    for (const [impl, runs] of Object.entries(R[k])) {
      s[k][impl] = {
        chunksPerSec: stat(pick(runs, (r) => r.chunksPerSec)),
        mbPerSec: stat(pick(runs, (r) => r.mbPerSec)),
        totalMs: stat(pick(runs, (r) => r.totalMs)),
        mainThreadCpuMs: stat(pick(runs, (r) => r.mainThreadCpuMs)),
        cpuUsPerChunk: stat(pick(runs, (r) => (r.mainThreadCpuMs * 1000) / r.chunks)),
        longTaskMs: stat(pick(runs, (r) => r.longTasks?.totalMs)),
        longTaskCount: stat(pick(runs, (r) => r.longTasks?.count)),
        longTaskMaxMs: stat(pick(runs, (r) => r.longTasks?.maxMs)),
        errors: runs.filter((r) => r?.error).map((r) => r.error),
      };
    }
  }
  for (const k of ["ttfc0", "ttfc50"]) {
    if (!R[k]) continue;
    s[k] = {};
    for (const [impl, runs] of Object.entries(R[k])) {
      s[k][impl] = { coldMs: stat(pick(runs, (r) => r.coldMs)), warmMs: stat(pick(runs, (r) => r.warmMs)) };
    }
  }
  if (R.delay) {
    s.delay = {};
    for (const [impl, runs] of Object.entries(R.delay)) {
      const all = ok(runs).flatMap((r) => r.delays);
      s.delay[impl] = {
        p50: quantile(all, 0.5),
        p99: quantile(all, 0.99),
        max: all.length ? Math.max(...all) : null,
        samples: all.length,
        runP50: stat(pick(runs, (r) => r.p50)),
        runP99: stat(pick(runs, (r) => r.p99)),
      };
    }
  }
  if (R.memory1m) {
    s.memory1m = {};
    for (const [impl, runs] of Object.entries(R.memory1m)) {
      s.memory1m[impl] = {
        wasmBefore: stat(pick(runs, (r) => r.before.wasm)),
        wasmGrowth: stat(pick(runs, (r) => r.wasmGrowth)),
        jsHeapBefore: stat(pick(runs, (r) => r.before.jsHeap)),
        jsHeapPeak: stat(pick(runs, (r) => r.jsHeapPeak)),
        jsHeapGrowthAfterGc: stat(pick(runs, (r) => r.jsHeapGrowthAfterGc)),
        totalMs: stat(pick(runs, (r) => r.totalMs)),
      };
    }
  }
  if (R.memoryTurns) {
    s.memoryTurns = {};
    for (const [impl, runs] of Object.entries(R.memoryTurns)) {
      s.memoryTurns[impl] = {
        wasmBefore: stat(pick(runs, (r) => r.before.wasm)),
        wasmGrowth: stat(pick(runs, (r) => r.wasmGrowth)),
        jsHeapGrowth: stat(pick(runs, (r) => r.jsHeapGrowth)),
        msPerTurn: stat(pick(runs, (r) => r.totalMs / r.n)),
      };
    }
  }
  if (R.slowConsumer) {
    s.slowConsumer = {};
    for (const [impl, runs] of Object.entries(R.slowConsumer)) {
      s.slowConsumer[impl] = {
        consumed: stat(pick(runs, (r) => r.consumed)),
        serverSeqAt3s: stat(pick(runs, (r) => r.serverSeqAt3s)),
        jsHeapGrowth: stat(pick(runs, (r) => r.jsHeapGrowth)),
        wasmGrowth: stat(pick(runs, (r) => r.wasmGrowth)),
      };
    }
  }
  if (R.tabs) {
    s.tabs = {};
    for (const [impl, runs] of Object.entries(R.tabs)) {
      s.tabs[impl] = {
        idleMax: stat(pick(runs, (r) => r.idleMax)),
        idleRequests: stat(pick(runs, (r) => r.idleRequests)),
        resumedMax: stat(pick(runs, (r) => r.resumedMax)),
        resumedRequests: stat(pick(runs, (r) => r.resumedRequests)),
        turns: stat(pick(runs, (r) => r.turns)),
      };
    }
  }
  if (R.replay5k) {
    s.replay5k = {};
    for (const [impl, runs] of Object.entries(R.replay5k)) {
      s.replay5k[impl] = {
        totalMs: stat(pick(runs, (r) => r.totalMs)),
        mainThreadCpuMs: stat(pick(runs, (r) => r.mainThreadCpuMs)),
        updates: stat(pick(runs, (r) => r.updates)),
        renders: stat(pick(runs, (r) => r.renders)),
        renderedChars: stat(pick(runs, (r) => r.renderedChars)),
        longTaskMaxMs: stat(pick(runs, (r) => r.longTasks?.maxMs)),
      };
    }
  }
  // Targets.
  const t = [];
  // Two decimals, or three when two would round across the threshold.
  const ratio = (x, threshold) => `${x.toFixed(Math.abs(x - threshold) < 0.005 ? 3 : 2)}×`;
  const oursGz = sizes.ours.total.gzip;
  t.push({ target: "wasm + glue ≤ 25 KB gzip", value: `${kb(oursGz)} gzip (${(oursGz / 1000).toFixed(1)} kB)`, pass: oursGz <= 25 * 1000 });
  const tp = s.throughput100k;
  if (tp?.ours?.chunksPerSec && tp.official?.chunksPerSec && tp.raw?.chunksPerSec) {
    const vsJs = tp.ours.chunksPerSec.median / tp.official.chunksPerSec.median;
    const vsRaw = tp.ours.chunksPerSec.median / tp.raw.chunksPerSec.median;
    t.push({ target: "throughput ≥ 1.5× the JS transport (100k small records)", value: ratio(vsJs, 1.5), pass: vsJs >= 1.5 });
    t.push({ target: "throughput ≥ 0.8× the minimal reader (100k small records)", value: ratio(vsRaw, 0.8), pass: vsRaw >= 0.8 });
  }
  const tp4 = s.throughput4k;
  if (tp4?.ours?.chunksPerSec && tp4.official?.chunksPerSec && tp4.raw?.chunksPerSec) {
    const vsJs = tp4.ours.chunksPerSec.median / tp4.official.chunksPerSec.median;
    const vsRaw = tp4.ours.chunksPerSec.median / tp4.raw.chunksPerSec.median;
    t.push({ target: "throughput ≥ 1.5× the JS transport (4 KB records)", value: ratio(vsJs, 1.5), pass: vsJs >= 1.5 });
    t.push({ target: "throughput ≥ 0.8× the minimal reader (4 KB records)", value: ratio(vsRaw, 0.8), pass: vsRaw >= 0.8 });
  }
  const l = s.ttfc50;
  if (l?.ours?.warmMs && l.official?.warmMs) {
    const gain = l.official.warmMs.median - l.ours.warmMs.median;
    t.push({
      target: "time to first chunk ≥ one round trip (50 ms) shorter than the JS transport (50 ms latency, warm send)",
      value: `${gain.toFixed(0)} ms shorter`,
      pass: gain >= 50,
    });
  }
  const m = s.memory1m?.ours?.wasmGrowth;
  if (m) t.push({ target: "wasm memory growth ≤ 1 MiB over the 1M-record stream", value: `${(m.max / 2 ** 20).toFixed(2)} MiB (worst run)`, pass: m.max <= 1 << 20 });
  s.targets = t;
  return s;
}

const kb = (n) => (n === null || n === undefined ? "–" : `${(n / 1024).toFixed(1)} KiB`);
const mib = (n) => (n === null || n === undefined ? "–" : `${(n / 2 ** 20).toFixed(1)} MiB`);
const fmt = (st, f = (x) => x.toFixed(0)) =>
  !st ? "–" : st.n === 1 ? f(st.median) : `${f(st.median)} (${f(st.min)}–${f(st.max)})`;
const fmtMs = (st) => fmt(st, (x) => x.toFixed(1));
const fmtK = (st) => fmt(st, (x) => `${(x / 1000).toFixed(0)}k`);
const fmtMiB = (st) => fmt(st, (x) => (x / 2 ** 20).toFixed(1));
const names = { ours: "trigger-chat-wasm", official: "@trigger.dev/sdk 4.8.3", raw: "minimal reader" };

function markdown(r) {
  const s = r.summary;
  const m = r.machine;
  const L = [];
  L.push(`### Benchmark: trigger-chat-wasm vs the official TriggerChatTransport`);
  L.push("");
  L.push(`- Date: ${r.date}, commit ${r.commit}`);
  L.push(`- Machine: ${m.nproc} × ${m.cpu} (nproc ${m.nproc}), ${m.memGiB} GiB RAM, ${m.os}; load average ${m.loadavgBefore.map((x) => x.toFixed(2)).join(" ")} at the start, ${m.loadavgAfter.map((x) => x.toFixed(2)).join(" ")} at the end`);
  L.push(`- Browser: headless Chromium ${m.chromium} (/usr/bin/chromium via playwright-core), node ${m.node}`);
  L.push(`- Server: chat-devserver (release build), pages served by it (same origin)`);
  L.push(`- Command: \`${r.command}\` (interleaved rounds: ${r.config.rounds} for throughput and time to first chunk, ${r.config.heavyRounds} for per-chunk delay, 100 turns and the slow consumer, ${r.config.slowRounds} for the 1M-record turn and tabs; the cases took ${Math.round(r.runSeconds)} s)`);
  L.push(`- Cells are median (min–max) over rounds. Timings on a shared machine are noisy: compare the load average above, and prefer main-thread CPU time (thread time, less sensitive to load) to wall time.`);
  L.push("");
  L.push("#### Shipped size (what an app ships: esbuild bundle, minified, tree-shaken, platform browser; 1 KiB = 1024 bytes)");
  L.push("");
  L.push("| | raw | gzip -9 | brotli q11 |");
  L.push("|---|---:|---:|---:|");
  const so = r.sizes.ours;
  L.push(`| trigger-chat-wasm: .wasm | ${kb(so.wasm.raw)} | ${kb(so.wasm.gzip)} | ${kb(so.wasm.brotli)} |`);
  L.push(`| trigger-chat-wasm: JS (index + transport + glue, bundled) | ${kb(so.js.raw)} | ${kb(so.js.gzip)} | ${kb(so.js.brotli)} |`);
  L.push(`| **trigger-chat-wasm: total** | **${kb(so.total.raw)}** | **${kb(so.total.gzip)}** | **${kb(so.total.brotli)}** |`);
  const sj = r.sizes.official;
  L.push(`| **@trigger.dev/sdk/chat \`TriggerChatTransport\`** | **${kb(sj.raw)}** | **${kb(sj.gzip)}** | **${kb(sj.brotli)}** |`);
  L.push("");
  const tpTable = (key, title) => {
    const t = s[key];
    if (!t) return;
    L.push(`#### ${title}`);
    L.push("");
    L.push("| | chunks/s | MB/s of text | turn time (ms) | main-thread CPU (ms) | CPU per chunk (µs) | long tasks: total ms | count | longest (ms) |");
    L.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const [impl, v] of Object.entries(t)) {
      L.push(`| ${names[impl]} | ${fmtK(v.chunksPerSec)} | ${fmt(v.mbPerSec, (x) => x.toFixed(1))} | ${fmt(v.totalMs)} | ${fmt(v.mainThreadCpuMs)} | ${fmt(v.cpuUsPerChunk, (x) => x.toFixed(1))} | ${fmt(v.longTaskMs)} | ${fmt(v.longTaskCount)} | ${fmt(v.longTaskMaxMs)} |`);
    }
    const base = t.raw?.mainThreadCpuMs?.median;
    if (base) {
      const rel = Object.entries(t)
        .filter(([impl, v]) => impl !== "raw" && v.mainThreadCpuMs)
        .map(([impl, v]) => `${names[impl]} ${(v.mainThreadCpuMs.median / base).toFixed(2)}×`);
      L.push("");
      L.push(`Main-thread CPU relative to the minimal reader (medians): ${rel.join(", ")}.`);
    }
    L.push("");
  };
  tpTable("throughput100k", "Throughput: one turn of 100 000 small text-deltas (`stream 100000`), read from the returned ReadableStream in the page");
  tpTable("throughput4k", "Throughput: one turn of 10 000 ~4 KB text-deltas (`stream 10000 size 4096`, ~41 MB)");
  if (s.ttfc0 || s.ttfc50) {
    L.push("#### Time to first chunk (ms, `sendMessages` → first chunk read)");
    L.push("");
    L.push("| | added latency | first send (startSession too) | later send |");
    L.push("|---|---:|---:|---:|");
    for (const [k, lat] of [["ttfc0", 0], ["ttfc50", 50]]) {
      for (const [impl, v] of Object.entries(s[k] ?? {})) L.push(`| ${names[impl]} | ${lat} ms | ${fmtMs(v.coldMs)} | ${fmtMs(v.warmMs)} |`);
    }
    L.push("");
  }
  if (s.delay) {
    L.push("#### Per-chunk delay (ms, server record timestamp → consumer read; paced `slow` reply, 40 deltas 100 ms apart)");
    L.push("");
    L.push("| | p50 | p99 | max | samples |");
    L.push("|---|---:|---:|---:|---:|");
    for (const [impl, v] of Object.entries(s.delay)) {
      L.push(`| ${names[impl]} | ${v.p50?.toFixed(1) ?? "–"} | ${v.p99?.toFixed(1) ?? "–"} | ${v.max?.toFixed(1) ?? "–"} | ${v.samples} |`);
    }
    L.push("");
  }
  if (s.memory1m || s.memoryTurns) {
    L.push("#### Memory (MiB): a 1 000 000-record turn read as fast as possible, then 100 short turns");
    L.push("");
    L.push("| | wasm memory before | wasm growth over the 1M turn | JS heap peak during it (no GC) | JS heap after it − before (both after GC) | 1M turn time (ms) | after 100 turns: wasm growth | JS heap growth (GC) |");
    L.push("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const impl of TRANSPORTS) {
      const a = s.memory1m?.[impl];
      const b = s.memoryTurns?.[impl];
      const wasm = (st) => (st ? fmtMiB(st) : "n/a");
      L.push(
        `| ${names[impl]} | ${wasm(a?.wasmBefore)} | ${wasm(a?.wasmGrowth)} | ${fmtMiB(a?.jsHeapPeak)} | ${fmtMiB(a?.jsHeapGrowthAfterGc)} | ${fmt(a?.totalMs)} | ${wasm(b?.wasmGrowth)} | ${fmtMiB(b?.jsHeapGrowth)} |`,
      );
    }
    L.push("");
  }
  if (s.slowConsumer) {
    L.push("#### Slow consumer: one chunk every 50 ms for 3 s of a 1 000 000-record turn");
    L.push("");
    L.push("| | chunks the consumer got | records the server had produced at 3 s | JS heap growth (MiB) | wasm growth (MiB) |");
    L.push("|---|---:|---:|---:|---:|");
    for (const [impl, c] of Object.entries(s.slowConsumer)) {
      L.push(`| ${names[impl]} | ${fmt(c.consumed)} | ${fmtK(c.serverSeqAt3s)} | ${fmtMiB(c.jsHeapGrowth)} | ${c.wasmGrowth ? fmtMiB(c.wasmGrowth) : "n/a"} |`);
    }
    L.push("");
  }
  if (s.tabs) {
    L.push("#### Tabs: `.out` connections the server sees, 3 tabs of one browser on one chat (`multiTab: true`)");
    L.push("");
    L.push("| | 3 tabs open, one replies: max open / requests | 2 tabs reload mid-reply and resume: max open / requests |");
    L.push("|---|---:|---:|");
    for (const [impl, v] of Object.entries(s.tabs)) {
      L.push(`| ${names[impl]} | ${fmt(v.idleMax)} / ${fmt(v.idleRequests)} | ${fmt(v.resumedMax)} / ${fmt(v.resumedRequests)} |`);
    }
    L.push("");
  }
  if (s.replay5k) {
    L.push("#### Reload after a 5 000-delta reply, replayed through the AI SDK's `Chat` (`useChat({ resume: true })`; every render writes the reply's text into the page)");
    L.push("");
    L.push("| | time to the full reply (ms) | main-thread CPU (ms) | message updates | renders | longest task (ms) | characters shown |");
    L.push("|---|---:|---:|---:|---:|---:|---:|");
    const replayNames = { ...names, ours: "trigger-chat-wasm (as shipped: deltas that arrive together are merged)", "ours-per-record": "trigger-chat-wasm, `coalesceDeltas: false`" };
    for (const [impl, v] of Object.entries(s.replay5k)) {
      L.push(`| ${replayNames[impl]} | ${fmt(v.totalMs)} | ${fmt(v.mainThreadCpuMs)} | ${fmt(v.updates)} | ${fmt(v.renders)} | ${fmt(v.longTaskMaxMs)} | ${fmt(v.renderedChars)} |`);
    }
    L.push("");
  }
  L.push("#### Targets");
  L.push("");
  L.push("| target | measured | met? |");
  L.push("|---|---:|---|");
  for (const t of s.targets) L.push(`| ${t.target} | ${t.value} | ${t.pass ? "yes" : "**no**"} |`);
  const failed = Object.entries(r.results).flatMap(([name, byImpl]) =>
    Object.entries(byImpl).flatMap(([impl, runs]) => runs.filter((x) => x?.error).map((x) => `${name}/${impl}: ${x.error.split("\n")[0]}`)),
  );
  if (failed.length || r.pageErrors.length || r.serverRestarts.length) L.push("");
  if (failed.length) L.push(`Failed runs (left out of the cells above): ${failed.length} — ${failed.join("; ")}`);
  if (r.serverRestarts.length) L.push(`The server ended unexpectedly ${r.serverRestarts.length} time(s) and was restarted (see the JSON).`);
  if (r.pageErrors.length) L.push(`Page errors: ${r.pageErrors.length} (see the JSON).`);
  return L.join("\n");
}

await main();
