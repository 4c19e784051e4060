// The demo's own persistence: the chat list and each chat's messages, in localStorage. (The
// transport persists its session state — token, resume cursor — by itself, under its own keys.)
import type { ChatMessage } from "./types";

const PREFIX = "tcw-demo";
const CHATS_KEY = `${PREFIX}:chats`;
const messagesKey = (chatId: string) => `${PREFIX}:messages:${chatId}`;

export type ChatSummary = {
  id: string;
  title: string;
  updatedAt: number;
};

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

function write(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or blocked: the demo keeps working, it just won't survive a reload.
  }
}

export function loadChats(): ChatSummary[] {
  const chats = read<ChatSummary[]>(CHATS_KEY, []);
  return Array.isArray(chats) ? chats.filter((c) => typeof c?.id === "string") : [];
}

export function saveChats(chats: ChatSummary[]): void {
  write(CHATS_KEY, chats);
}

export function isChatListKey(key: string | null): boolean {
  return key === CHATS_KEY;
}

export function loadMessages(chatId: string): ChatMessage[] {
  const messages = read<ChatMessage[]>(messagesKey(chatId), []);
  return Array.isArray(messages) ? messages : [];
}

export function saveMessages(chatId: string, messages: ChatMessage[]): void {
  write(messagesKey(chatId), messages);
}

export function removeMessages(chatId: string): void {
  try {
    localStorage.removeItem(messagesKey(chatId));
  } catch {
    // ignore
  }
}

export function newChatId(): string {
  const random =
    typeof crypto !== "undefined" && typeof crypto.randomUUID === "function"
      ? crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  return `chat-${random.slice(0, 13)}`;
}

/** A chat's title: its first user message, shortened. */
export function titleOf(messages: ChatMessage[]): string | undefined {
  for (const message of messages) {
    if (message.role !== "user") continue;
    const text = message.parts
      .map((part) => (part.type === "text" ? part.text : ""))
      .join(" ")
      .trim();
    if (text) return text.length > 48 ? `${text.slice(0, 47)}…` : text;
  }
  return undefined;
}
