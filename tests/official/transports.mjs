// The transports every scenario runs against: the official `TriggerChatTransport` from
// `@trigger.dev/sdk/chat` (pinned in package.json) and ours, the built package in `pkg/`
// (`scripts/build`; `tests/official/run` builds it when missing or stale).
//
//   TRANSPORTS=official,wasm        which ones to run (default: both)
//   TRIGGER_CHAT_WASM_PKG=/dir      use a package built elsewhere (index.js + trigger_chat_wasm_bg.wasm)
//
// Each entry is `{ name, resumeStreamIsReplay, create(options), createSubAgentMessages(options) }`.
// `create` takes the official transport's options; ours additionally gets `persistence: "none"`
// (Node has no localStorage; the scenarios persist through `sessions` + `onSessionChange`, as an
// app with its own database). `createSubAgentMessages` is the package's sub-agent store.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TriggerChatTransport as OfficialTransport, createSubAgentMessages } from "@trigger.dev/sdk/chat";

const here = path.dirname(fileURLToPath(import.meta.url));

export const official = {
  name: "official",
  /** The official transport does not declare it (W26); `useChat` reads `undefined`. */
  resumeStreamIsReplay: false,
  create: (options) => new OfficialTransport(options),
  /** The package's `createSubAgentMessages`. */
  createSubAgentMessages,
};

// Load and instantiate ours once per test file. A failure is kept and rethrown by `create`, so it
// fails every wasm test with the reason instead of taking the official tests down with it.
const pkgDir = process.env.TRIGGER_CHAT_WASM_PKG
  ? path.resolve(process.env.TRIGGER_CHAT_WASM_PKG)
  : path.resolve(here, "../../pkg");
let wasmPkg;
let wasmLoadError;
const wanted = (process.env.TRANSPORTS ?? "official,wasm").split(",").map((s) => s.trim());
if (process.env.TRIGGER_CHAT_WASM_UNAVAILABLE) {
  wasmLoadError = new Error(`trigger-chat-wasm unavailable: ${process.env.TRIGGER_CHAT_WASM_UNAVAILABLE}`);
} else if (wanted.includes("wasm")) {
  try {
    wasmPkg = await import(pathToFileURL(path.join(pkgDir, "index.js")).href);
    await wasmPkg.init(readFileSync(path.join(pkgDir, "trigger_chat_wasm_bg.wasm")));
  } catch (error) {
    wasmLoadError = new Error(`cannot load trigger-chat-wasm from ${pkgDir} (run scripts/build): ${error?.stack ?? error}`);
  }
}

export const wasm = {
  name: "wasm",
  resumeStreamIsReplay: true,
  create(options) {
    if (wasmLoadError) throw wasmLoadError;
    return new wasmPkg.TriggerChatTransport({ persistence: "none", ...options });
  },
  createSubAgentMessages(options) {
    if (wasmLoadError) throw wasmLoadError;
    return wasmPkg.createSubAgentMessages(options);
  },
  /** `isTriggerChatError` of the package. */
  isError: (e) => wasmPkg?.isTriggerChatError(e) ?? false,
};

const all = { official, wasm };
for (const name of wanted) if (!all[name]) throw new Error(`TRANSPORTS: unknown transport ${name}`);

/** The transports selected by `TRANSPORTS`, in a stable order. */
export const transports = Object.values(all).filter((t) => wanted.includes(t.name));
