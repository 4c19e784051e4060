// Packaging smoke test: `npm pack` the built pkg/, install the tarball into a clean Vite + React
// app (from the npm registry, like a user would), type-check and bundle it, import it under
// Node as a server renderer would, and finally run the bundle in Chromium against chat-devserver.
// The demo app (www/) and a Next.js app are built against the same tarball.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { ROOT, eventually, launchBrowser, newChatId, serve } from "./helpers.mjs";

const run = promisify(execFile);
const www = JSON.parse(readFileSync(join(ROOT, "www", "package.json"), "utf8"));
const pinned = { ...www.dependencies, ...www.devDependencies };
const NEXT_VERSION = "16.4.6";

let dir;
let tarball;

/** Opens `url` in Chromium, clicks #send, and waits for `expected` in #out. */
async function chatOnce(url, expected) {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e));
    await page.goto(url);
    await page.click("#send");
    await eventually(async () => (await page.textContent("#out"))?.includes(expected), { message: expected });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}
before(() => {
  dir = mkdtempSync(join(tmpdir(), "tcw-pack-"));
});
after(() => {
  if (dir && !process.env.E2E_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
});

async function npm(args, cwd) {
  return run("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    maxBuffer: 64 << 20,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
}

test("npm pack ships the package files, and every module they import", { timeout: 60_000 }, async () => {
  const { stdout } = await npm(["pack", join(ROOT, "pkg"), "--pack-destination", dir, "--json"], dir);
  const [info] = JSON.parse(stdout);
  tarball = join(dir, info.filename);
  const shipped = new Set(info.files.map((f) => f.path));
  const manifest = JSON.parse(readFileSync(join(ROOT, "pkg", "package.json"), "utf8"));

  // The entry points and what they name.
  for (const entry of [".", "./react"]) {
    for (const file of Object.values(manifest.exports[entry])) {
      assert.ok(shipped.has(file.replace(/^\.\//, "")), `${entry} → ${file} is in the tarball`);
    }
  }
  assert.ok(shipped.has("trigger_chat_wasm_bg.wasm"), "the .wasm ships");
  assert.ok(shipped.has("README.md") && shipped.has("LICENSE"), "the README and the licence ship");
  assert.equal(manifest.sideEffects, false);
  // Nothing but the declared files (plus what npm always adds).
  for (const file of shipped) {
    assert.ok(
      manifest.files.includes(file) || /^(package\.json|README|LICENSE)/i.test(file),
      `${file} is declared in "files"`,
    );
  }
  // Every relative import of a shipped module is shipped too (a file missing from "files" would
  // only break for installed users).
  for (const file of shipped) {
    if (!/\.(m?js|d\.ts)$/.test(file)) continue;
    const text = readFileSync(join(ROOT, "pkg", file), "utf8");
    for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.\/[^"']+)["']/g)) {
      const target = spec.slice(2);
      assert.ok(shipped.has(target), `${file} imports ${spec}, which is in the tarball`);
    }
    for (const [, spec] of text.matchAll(/new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url/g)) {
      assert.ok(shipped.has(spec.replace(/^\.\//, "")), `${file} loads ${spec}, which is in the tarball`);
    }
  }
});

const APP = {
  "index.html": `<!doctype html><html><head><meta charset="utf-8"><title>packed</title></head>
<body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>`,
  "tsconfig.json": JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "bundler",
      lib: ["ES2022", "DOM", "DOM.Iterable"],
      jsx: "react-jsx",
      skipLibCheck: true,
    },
    include: ["src"],
  }),
  // A whole chat in one file, written only against the package's public API.
  "src/main.tsx": `/// <reference types="vite/client" />
import { useChat } from "@ai-sdk/react";
import type { UIMessage } from "ai";
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { init, isTriggerChatError, type ChatTransportEvent } from "trigger-chat-wasm";
import { useMultiTabChat, useTriggerChatTransport } from "trigger-chat-wasm/react";
// The .wasm through the package's exports, as an app that serves it itself does.
import wasmUrl from "trigger-chat-wasm/trigger_chat_wasm_bg.wasm?url";

void init(wasmUrl);

type Msg = UIMessage<{ at?: number }>;
const post = async (path: string) =>
  (await (await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).json()) as { publicAccessToken: string };
const chatId = new URLSearchParams(location.search).get("chat") ?? "packed";

function Chat() {
  const [events, setEvents] = useState<ChatTransportEvent["type"][]>([]);
  const transport = useTriggerChatTransport<Msg>({
    task: "ai-chat",
    baseURL: location.origin,
    startSession: ({ chatId }) => post("/api/chat/" + encodeURIComponent(chatId) + "/start"),
    accessToken: async ({ chatId }) => (await post("/api/chat/" + encodeURIComponent(chatId) + "/token")).publicAccessToken,
    onEvent: (e) => setEvents((all) => [...all, e.type]),
    multiTab: true,
  });
  const { messages, setMessages, sendMessage, status, error } = useChat<Msg>({ id: chatId, transport });
  const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages);
  return (
    <div>
      <button id="send" disabled={isReadOnly} onClick={() => sendMessage({ text: "from the tarball" })}>send</button>
      <pre id="out">{messages.map((m) => m.role + ": " + m.parts.map((p) => (p.type === "text" ? p.text : "")).join("")).join("\\n")}</pre>
      <p id="status">{status}</p>
      <p id="events">{events.join(",")}</p>
      {error && <p id="error">{isTriggerChatError(error) ? error.code : error.message}</p>}
    </div>
  );
}

createRoot(document.getElementById("root")!).render(<Chat />);
`,
  // What a server renderer does: import both entries and render the hook without a browser.
  "ssr.mjs": `import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { TriggerChatTransport, createChatTransport } from "trigger-chat-wasm";
import { useTriggerChatTransport, useMultiTabChat, useChatActions } from "trigger-chat-wasm/react";

const t = createChatTransport({ task: "ai-chat", accessToken: () => "pat" });
if (!(t instanceof TriggerChatTransport) || t.sessionStatus("x") !== "open" || t.getSession("x") !== undefined) {
  throw new Error("transport methods misbehave without a browser");
}
function Page() {
  const transport = useTriggerChatTransport({ task: "ai-chat", accessToken: () => "pat", multiTab: true });
  const { isReadOnly } = useMultiTabChat(transport, "c1", [], () => {});
  const { sendAction } = useChatActions({ sendMessage: () => {} });
  return createElement("p", null, typeof sendAction + ":" + String(isReadOnly));
}
process.stdout.write(renderToString(createElement(Page)));
`,
};

test("the tarball installs into a clean Vite app, type-checks and bundles", { timeout: 240_000 }, async (t) => {
  if (!tarball) t.skip("npm pack failed");
  const app = join(dir, "app");
  for (const [file, text] of Object.entries(APP)) {
    mkdirSync(join(app, file, ".."), { recursive: true });
    writeFileSync(join(app, file), text);
  }
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
      name: "packed-app",
      private: true,
      type: "module",
      dependencies: {
        "trigger-chat-wasm": `file:${tarball}`,
        react: pinned.react,
        "react-dom": pinned["react-dom"],
        ai: pinned.ai,
        "@ai-sdk/react": pinned["@ai-sdk/react"],
      },
      devDependencies: {
        vite: pinned.vite,
        typescript: pinned.typescript,
        "@types/react": pinned["@types/react"],
        "@types/react-dom": pinned["@types/react-dom"],
      },
    }),
  );
  await npm(["install", "--prefer-offline"], app);
  // A real install (a copy, not a link to pkg/).
  assert.ok(readdirSync(join(app, "node_modules", "trigger-chat-wasm")).includes("trigger_chat_wasm_bg.wasm"));

  await run(join(app, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", app], { cwd: app });
  const { stdout: ssr } = await run(process.execPath, ["ssr.mjs"], { cwd: app });
  assert.equal(ssr, "<p>function:false</p>", "server rendering works and touches no browser API");

  await run(join(app, "node_modules", ".bin", "vite"), ["build", "--logLevel", "warn"], { cwd: app });
  const assets = readdirSync(join(app, "dist", "assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the .wasm is emitted as an asset: ${assets}`);
});

test("the demo app (www/) type-checks and builds against the tarball", { timeout: 240_000 }, async (t) => {
  if (!tarball) return t.skip("npm pack failed");
  // The demo's own sources and config, with its link to ../pkg replaced by the tarball.
  const demo = join(dir, "demo");
  for (const entry of ["index.html", "tsconfig.json", "vite.config.ts", "src"]) {
    cpSync(join(ROOT, "www", entry), join(demo, entry), { recursive: true });
  }
  const manifest = { ...www, dependencies: { ...www.dependencies, "trigger-chat-wasm": `file:${tarball}` } };
  writeFileSync(join(demo, "package.json"), JSON.stringify(manifest, null, 2));
  await npm(["install", "--prefer-offline"], demo);
  assert.ok(
    readdirSync(join(demo, "node_modules", "trigger-chat-wasm")).includes("trigger_chat_wasm_bg.wasm"),
    "installed from the tarball (a copy, not a link)",
  );
  try {
    await npm(["run", "build"], demo); // tsc --noEmit, then vite build
  } catch (e) {
    assert.fail(`npm run build failed:\n${e.stdout}\n${e.stderr}`);
  }
  const assets = readdirSync(join(demo, "dist", "assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the .wasm is emitted as an asset: ${assets}`);
});

test("the bundled app chats in Chromium against chat-devserver", { timeout: 60_000 }, async (t) => {
  const dist = join(dir, "app", "dist");
  const bin = process.env.CHAT_DEVSERVER_BIN;
  if (!bin) t.skip("CHAT_DEVSERVER_BIN is not set (run through tests/e2e/run)");
  let built = true;
  try {
    readdirSync(dist);
  } catch {
    built = false;
  }
  if (!built) t.skip("the app was not built");
  if (!bin || !built) return;

  const server = await serve(dist);
  try {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e));
      await page.goto(`${server.url}/?chat=${newChatId("packed")}`);
      await page.click("#send");
      await eventually(async () => (await page.textContent("#out"))?.includes("assistant: You said: from the tarball"), {
        message: "the echo",
      });
      assert.match(await page.textContent("#events"), /message-sent.*turn-completed/);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    await server.stop();
  }
});

// Next.js with webpack (`next build --webpack`), App Router, a client component using the hooks,
// prerendered on the server and exported statically so chat-devserver can serve it.
const NEXT_APP = {
  "next.config.mjs": `export default { output: "export" };\n`,
  "app/layout.tsx": `export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (<html lang="en"><body>{children}</body></html>);
}
`,
  "app/page.tsx": `import { Chat } from "./chat";
export default function Page() {
  return <main><h1>Next.js + trigger-chat-wasm</h1><Chat /></main>;
}
`,
  "app/chat.tsx": `"use client";
import { useChat } from "@ai-sdk/react";
import { useMultiTabChat, useTriggerChatTransport } from "trigger-chat-wasm/react";

const post = async (path: string) =>
  (await (await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).json()) as { publicAccessToken: string };

export function Chat() {
  const transport = useTriggerChatTransport({
    task: "ai-chat",
    // Rendered on the server too: nothing may touch \`window\` during render there.
    baseURL: typeof window === "undefined" ? "http://localhost" : window.location.origin,
    startSession: ({ chatId }) => post("/api/chat/" + encodeURIComponent(chatId) + "/start"),
    accessToken: async ({ chatId }) => (await post("/api/chat/" + encodeURIComponent(chatId) + "/token")).publicAccessToken,
    multiTab: true,
  });
  const chatId = "next-" + (typeof location === "undefined" ? "ssr" : location.search.slice(1) || "demo");
  const { messages, setMessages, sendMessage, status } = useChat({ id: chatId, transport });
  const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages);
  return (
    <div>
      <button id="send" disabled={isReadOnly} onClick={() => sendMessage({ text: "from next" })}>send</button>
      <p id="status">{status}</p>
      <pre id="out">{messages.map((m) => m.role + ": " + m.parts.map((p) => (p.type === "text" ? p.text : "")).join("")).join("\\n")}</pre>
    </div>
  );
}
`,
};

test("a Next.js (webpack) app builds, prerenders and chats with the tarball", { timeout: 420_000 }, async (t) => {
  if (process.env.E2E_SKIP_NEXT) return t.skip("E2E_SKIP_NEXT is set");
  if (!tarball) return t.skip("npm pack failed");
  const app = join(dir, "next");
  for (const [file, text] of Object.entries(NEXT_APP)) {
    mkdirSync(join(app, file, ".."), { recursive: true });
    writeFileSync(join(app, file), text);
  }
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
      name: "next-smoke",
      private: true,
      dependencies: {
        next: NEXT_VERSION,
        "trigger-chat-wasm": `file:${tarball}`,
        react: pinned.react,
        "react-dom": pinned["react-dom"],
        ai: pinned.ai,
        "@ai-sdk/react": pinned["@ai-sdk/react"],
      },
      devDependencies: {
        typescript: pinned.typescript,
        "@types/react": pinned["@types/react"],
        "@types/react-dom": pinned["@types/react-dom"],
        "@types/node": "20.19.25",
      },
    }),
  );
  await npm(["install", "--prefer-offline"], app);
  // `next build` type-checks too (it writes its own tsconfig.json).
  await run(join(app, "node_modules", ".bin", "next"), ["build", "--webpack"], {
    cwd: app,
    maxBuffer: 64 << 20,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  const html = readFileSync(join(app, "out", "index.html"), "utf8");
  assert.match(html, /Next\.js \+ trigger-chat-wasm/, "the page was prerendered on the server");
  if (!process.env.CHAT_DEVSERVER_BIN) return;
  const server = await serve(join(app, "out"));
  try {
    await chatOnce(`${server.url}/?${newChatId("next")}`, "assistant: You said: from next");
  } finally {
    await server.stop();
  }
});
