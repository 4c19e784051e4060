// The bench page for the official transport: `TriggerChatTransport` from @trigger.dev/sdk/chat
// (bench/package.json pins 4.8.3), bundled by esbuild as an app would.
import { TriggerChatTransport } from "@trigger.dev/sdk/chat";
import { appCallbacks, install, sendWith } from "./harness.js";

const params = new URLSearchParams(location.search);
// The official transport keeps sessions in memory only; an app that resumes after a reload (or
// in another tab) persists them itself through `sessions` + `onSessionChange`, as its docs say.
// Only the multi-tab page does (the other scenarios never reload).
const multiTab = params.has("multiTab");
const KEY = "bench-official-sessions";
const stored = () => {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? "{}");
  } catch {
    return {};
  }
};
const transport = new TriggerChatTransport({
  ...appCallbacks(location.origin),
  multiTab,
  ...(multiTab && {
    sessions: stored(),
    onSessionChange: (chatId, session) => {
      const all = stored();
      if (session) all[chatId] = session;
      else delete all[chatId];
      localStorage.setItem(KEY, JSON.stringify(all));
    },
  }),
});

install({
  name: "official",
  transport,
  send: (chatId, text, signal) => sendWith(transport, chatId, text, signal),
  reconnect: (chatId) => transport.reconnectToStream({ chatId }),
  wasmBytes: () => null,
  create: (extra) => new TriggerChatTransport({ ...appCallbacks(location.origin), ...extra }),
});
