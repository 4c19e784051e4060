// The status line under the chat title, fed by the transport's `onEvent`. One small external
// store keyed by chat id, read with useSyncExternalStore.
import { useSyncExternalStore } from "react";
import type { ChatTransportEvent } from "trigger-chat-wasm";

export type Tone = "idle" | "busy" | "ok" | "warn" | "error";

export type ConnectionStatus = {
  tone: Tone;
  text: string;
  /** The session was closed (by the agent, or a send was refused). */
  closed?: { reason?: string };
};

const IDLE: ConnectionStatus = { tone: "idle", text: "Ready" };
const statuses = new Map<string, ConnectionStatus>();
const listeners = new Set<() => void>();

function set(chatId: string, status: ConnectionStatus): void {
  const closed = statuses.get(chatId)?.closed;
  statuses.set(chatId, closed && !status.closed ? { ...status, closed } : status);
  for (const listener of listeners) listener();
}

const ms = (value: number | undefined) => (value === undefined ? "" : ` in ${Math.round(value)} ms`);

/** Maps one transport event to the chat's status line. */
export function recordEvent(event: ChatTransportEvent): void {
  switch (event.type) {
    case "message-sent":
      // (A stop closes the reply at once: no "reply complete" follows it.)
      set(
        event.chatId,
        event.source === "stop"
          ? { tone: "idle", text: "Stopped" }
          : { tone: "busy", text: `Sent${ms(event.durationMs)} · waiting for the agent` },
      );
      break;
    case "message-send-failed":
      set(event.chatId, { tone: "error", text: `Could not send: ${event.error.message}` });
      break;
    case "stream-connected":
      set(event.chatId, { tone: "busy", text: event.resumed ? "Reconnected · resuming the reply" : "Connected" });
      break;
    case "first-chunk":
      set(event.chatId, { tone: "busy", text: `Streaming${event.sinceSendMs === undefined ? "" : ` · first token${ms(event.sinceSendMs)}`}` });
      break;
    case "turn-completed":
      set(event.chatId, { tone: "ok", text: `Reply complete${ms(event.sinceSendMs)}` });
      break;
    case "stream-error":
      set(event.chatId, { tone: "error", text: `Connection lost: ${event.error.message}` });
      break;
    case "run-pending-version":
      set(event.chatId, { tone: "warn", text: "Waiting for the agent's deployment…" });
      break;
    case "session-closed":
      set(event.chatId, {
        tone: "warn",
        text: "Conversation closed",
        closed: { reason: event.reason },
      });
      break;
    case "storage-error":
      set(event.chatId, { tone: "warn", text: `Session storage unavailable: ${event.error.message}` });
      break;
  }
}

/** Forgets a chat's status (after the chat is deleted). */
export function clearStatus(chatId: string): void {
  statuses.delete(chatId);
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useConnectionStatus(chatId: string): ConnectionStatus {
  return useSyncExternalStore(subscribe, () => statuses.get(chatId) ?? IDLE, () => IDLE);
}

function subscribeOnline(listener: () => void): () => void {
  window.addEventListener("online", listener);
  window.addEventListener("offline", listener);
  return () => {
    window.removeEventListener("online", listener);
    window.removeEventListener("offline", listener);
  };
}

export function useOnline(): boolean {
  return useSyncExternalStore(subscribeOnline, () => navigator.onLine, () => true);
}
