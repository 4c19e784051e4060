// trigger-chat-wasm — TriggerChatTransport for the AI SDK's useChat, backed by WebAssembly.
//
// Safe to import during server-side rendering: nothing here touches a browser global or
// instantiates WebAssembly at import time. The module is instantiated once, on first use, and
// shared by every transport in the page. The constructor is synchronous, so `useChat` can build
// a transport during render.
import initWasm, { WasmDriver } from "./trigger_chat_wasm.js";
import { createTransportClass } from "./transport.js";

export { SUB_AGENT_DATA_TYPE, createSubAgentMessages } from "./subagents.js";

let loading;
let source; // where the app said the module is (init's argument), used by every later load

/**
 * Instantiates the WebAssembly module (once per page). Transports call it themselves; call it
 * early to warm up, or pass where the `.wasm` file lives (or its bytes) when it is served from
 * elsewhere.
 */
export function init(moduleOrPath) {
  if (moduleOrPath !== undefined) source = moduleOrPath;
  // A promise of the source is awaited here: wasm-bindgen's loader tells a URL from bytes before
  // it awaits, so it would take a promised URL for bytes.
  const load = async () => initWasm(source === undefined ? undefined : { module_or_path: await source });
  if (!loading) loading = load();
  // A transport built before this call may have started a load from the default place: should
  // that one fail, this source is tried before anyone sees the failure.
  else if (moduleOrPath !== undefined) loading = loading.catch(load);
  const current = loading;
  current.catch(() => {
    if (loading === current) loading = undefined;
  });
  return current;
}

/**
 * A `ChatTransport` for the AI SDK's `useChat` that talks to a Trigger.dev chat agent over
 * Sessions. Same options, methods and events as `TriggerChatTransport` from
 * `@trigger.dev/sdk/chat`.
 */
export const TriggerChatTransport = createTransportClass(() =>
  loaded().then(() => (options, seed) => new WasmDriver(options, seed)),
);

// The module; a load that fails after `init(source)` was called meanwhile is followed by that
// one (a transport built first, during render, already waits on the default load).
function loaded() {
  const current = init();
  return current.catch((error) => (loading && loading !== current ? loaded() : Promise.reject(error)));
}

/** `new TriggerChatTransport(options)`. */
export function createChatTransport(options) {
  return new TriggerChatTransport(options);
}

// Every `code` an error of this package carries (`TriggerChatErrorCode` in index.d.ts).
const CODES = [
  "session_closed", "unauthorized", "forbidden", "not_found", "payload_too_large", "rate_limited",
  "server", "http", "network", "protocol", "storage", "aborted", "read_only_tab", "invalid_option",
  "stream_stalled", "missing_callback", "callback_failed",
];

/**
 * Whether `error` came from this package: an `Error` whose `code` is one of its codes (Node's and
 * other libraries' errors carry string codes too).
 */
export function isTriggerChatError(error) {
  return error instanceof Error && CODES.includes(error.code);
}
