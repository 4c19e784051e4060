// The bench page for trigger-chat-wasm: the built package (pkg/, scripts/build) bundled by
// esbuild as an app would, the .wasm fetched by the default `init()` next to the bundle.
import { init, TriggerChatTransport } from "trigger-chat-wasm";
import { appCallbacks, install, sendWith } from "./harness.js";

const params = new URLSearchParams(location.search);
// wasm-bindgen's init resolves to the instance's exports; `memory` is the driver's linear memory.
const exports = await init();
const transport = new TriggerChatTransport({
  ...appCallbacks(location.origin),
  multiTab: params.has("multiTab"),
  // Default persistence (localStorage), as the package ships.
});

install({
  name: "ours",
  transport,
  send: (chatId, text, signal) => sendWith(transport, chatId, text, signal),
  reconnect: (chatId) => transport.reconnectToStream({ chatId }),
  wasmBytes: () => exports.memory.buffer.byteLength,
});
