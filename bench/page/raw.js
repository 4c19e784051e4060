// The practical upper bound: a minimal hand-written reader of the Sessions protocol, like the
// "self-contained parser" of docs/ai-chat/client-protocol.mdx (@trigger.dev/sdk 4.8.3): fetch,
// split the SSE text on blank lines, JSON.parse each batch and each record body. No retries,
// no resume, no tabs, no persistence, LF line ends only — everything a real transport adds is
// missing on purpose. It hands chunks out through a pull-based ReadableStream like the
// transports do, so the consumer code is the same. Turns on one chat run one after another.
import { appCallbacks, install, userMessage } from "./harness.js";

const origin = location.origin;
const chats = new Map(); // chatId → { token, lastSeq }

async function session(chatId) {
  let s = chats.get(chatId);
  if (!s) {
    const r = await appCallbacks(origin).startSession({ chatId, taskId: "ai-chat", clientData: {} });
    s = { token: r.publicAccessToken, lastSeq: null };
    chats.set(chatId, s);
  }
  return s;
}

async function send(chatId, text) {
  const s = await session(chatId);
  const base = `${origin}/realtime/v1/sessions/${encodeURIComponent(chatId)}`;
  const appended = await fetch(`${base}/in/append`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${s.token}`,
      "Content-Type": "application/json",
      "X-Part-Id": crypto.randomUUID(),
    },
    body: JSON.stringify({
      kind: "message",
      payload: { chatId, trigger: "submit-message", message: userMessage(text) },
    }),
  });
  if (!appended.ok) throw new Error(`append failed: ${appended.status}`);
  const headers = { Authorization: `Bearer ${s.token}`, Accept: "text/event-stream" };
  if (s.lastSeq !== null) headers["Last-Event-ID"] = String(s.lastSeq);
  const res = await fetch(`${base}/out`, { headers });
  if (!res.ok || !res.body) throw new Error(`.out failed: ${res.status}`);
  return chunks(res.body, s);
}

// UIMessageChunks of one turn, ending at its turn-complete control record.
function chunks(body, s) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let scan = 0;
  let finished = false;

  // One SSE event → chunks enqueued.
  function event(raw, controller) {
    let type = "message";
    let data = "";
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trimStart();
    }
    if (!data || type === "ping") return 0;
    if (type === "error") throw new Error(`stream error: ${data}`);
    if (data === "[DONE]") {
      finished = true;
      return 0;
    }
    if (type !== "batch") return 0;
    let n = 0;
    for (const record of JSON.parse(data).records) {
      s.lastSeq = record.seq_num;
      const first = record.headers?.[0];
      if (first && first[0] === "") continue; // command record
      if (first) {
        const control = record.headers.find((h) => h[0] === "trigger-control");
        if (control?.[1] === "turn-complete") {
          finished = true;
          return n;
        }
        continue;
      }
      const chunk = JSON.parse(record.body).data;
      if (chunk != null) {
        controller.enqueue(chunk);
        n++;
      }
    }
    return n;
  }

  return new ReadableStream({
    async pull(controller) {
      for (;;) {
        if (finished) {
          reader.cancel().catch(() => {});
          return controller.close();
        }
        const { done, value } = await reader.read();
        if (done) return controller.close();
        buf += decoder.decode(value, { stream: true });
        let start = 0;
        let n = 0;
        for (;;) {
          const end = buf.indexOf("\n\n", scan);
          if (end < 0) break;
          n += event(buf.slice(start, end), controller);
          start = scan = end + 2;
          if (finished) break;
        }
        buf = buf.slice(start);
        scan = Math.max(0, buf.length - 1);
        if (n > 0) return;
      }
    },
    cancel() {
      return reader.cancel();
    },
  });
}

install({ name: "raw", send, wasmBytes: () => null });
