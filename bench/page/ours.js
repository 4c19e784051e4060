// The bench page for trigger-chat-wasm: the built package (pkg/, scripts/build) bundled by
// esbuild as an app would, the .wasm fetched by the default `init()` next to the bundle.
import { init, TriggerChatTransport } from "trigger-chat-wasm";
import { appCallbacks, install, sendWith } from "./harness.js";

const params = new URLSearchParams(location.search);
// wasm-bindgen's init resolves to the instance's exports; `memory` is the driver's linear memory.
const exports = await init();
// The per-chunk cases compare the record pipelines chunk for chunk, so they read one chunk per
// record: merging the deltas that arrive together (the default) is measured by `replay`, whose
// page has `?coalesce`.
const coalesceDeltas = params.has("coalesce");
const transport = new TriggerChatTransport({
  ...appCallbacks(location.origin),
  multiTab: params.has("multiTab"),
  coalesceDeltas,
  // Default persistence (localStorage), as the package ships.
});

install({
  name: "ours",
  transport,
  send: (chatId, text, signal) => sendWith(transport, chatId, text, signal),
  reconnect: (chatId) => transport.reconnectToStream({ chatId }),
  wasmBytes: () => exports.memory.buffer.byteLength,
  create: (extra) => new TriggerChatTransport({ ...appCallbacks(location.origin), persistence: "none", coalesceDeltas, ...extra }),
});
