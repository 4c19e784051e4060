import { useCallback, useEffect, useState } from "react";
import type { StartSessionParams, StartSessionResult } from "trigger-chat-wasm";
import { useTriggerChatTransport } from "trigger-chat-wasm/react";
import { ChatView } from "./ChatView";
import { clearStatus, recordEvent, useOnline } from "./connection";
import { Sidebar } from "./Sidebar";
import {
  isChatListKey,
  loadChats,
  newChatId,
  removeMessages,
  saveChats,
  type ChatSummary,
} from "./storage";
import type { ChatMessage } from "./types";

// The customer endpoints (what a Next.js server action would do with the secret key). The demo
// server answers them; in a real app they are your backend.
async function postJson<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const text = await res.text();
    const error = new Error(`${path}: ${res.status} ${text}`);
    // A session closed earlier (the chat's URL opened after "goodbye"): say so as the transport
    // does, so the chat shows it closed instead of a raw error.
    try {
      const body = JSON.parse(text);
      if (body?.code === "session_closed") Object.assign(error, { code: "session_closed", closedReason: body.closedReason });
    } catch {
      // not JSON: the plain error
    }
    throw error;
  }
  return (await res.json()) as T;
}

const startSession = ({ chatId, taskId, clientData }: StartSessionParams) =>
  postJson<StartSessionResult>(`/api/chat/${encodeURIComponent(chatId)}/start`, { taskId, clientData });

const accessToken = async ({ chatId }: { chatId: string }) =>
  (await postJson<{ publicAccessToken: string }>(`/api/chat/${encodeURIComponent(chatId)}/token`, {}))
    .publicAccessToken;

const chatFromHash = () => {
  const match = /^#\/chat\/([^/?#]+)/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : undefined;
};

function initialChats(): { chats: ChatSummary[]; activeId: string } {
  let chats = loadChats();
  const fromUrl = chatFromHash();
  let activeId = fromUrl ?? chats[0]?.id;
  if (!activeId) activeId = newChatId();
  if (!chats.some((c) => c.id === activeId)) {
    chats = [{ id: activeId, title: "New chat", updatedAt: Date.now() }, ...chats];
    saveChats(chats);
  }
  return { chats, activeId };
}

const QUEUE_SENDS = new URLSearchParams(window.location.search).get("tabs") === "queue";

export function App({ baseURL }: { baseURL: string }) {
  const [{ chats, activeId }, setState] = useState(initialChats);
  const online = useOnline();

  // One transport for the whole app; each chat is a chatId on it.
  const transport = useTriggerChatTransport<ChatMessage>({
    task: "ai-chat",
    baseURL,
    multiTab: true,
    // `?tabs=queue`: a tab may write while another one's reply streams; its message goes next.
    multiTabSend: QUEUE_SENDS ? "queue" : "reject",
    startSession,
    accessToken,
    onEvent: recordEvent,
    clientData: { app: "trigger-chat-wasm demo" },
  });

  // Keep the URL on the open chat (reload and "open in a new tab" land on the same chat).
  useEffect(() => {
    const hash = `#/chat/${encodeURIComponent(activeId)}`;
    if (window.location.hash !== hash) window.history.replaceState(null, "", hash);
  }, [activeId]);

  // Follow the back/forward buttons and chats created or deleted in other tabs.
  useEffect(() => {
    const onHash = () => {
      const id = chatFromHash();
      if (!id) return;
      setState((s) => {
        const known = s.chats.some((c) => c.id === id);
        const next = known ? s.chats : [{ id, title: "New chat", updatedAt: Date.now() }, ...s.chats];
        if (!known) saveChats(next);
        return { chats: next, activeId: id };
      });
    };
    const onStorage = (e: StorageEvent) => {
      if (!isChatListKey(e.key)) return;
      setState((s) => {
        const next = loadChats();
        return { chats: next.length ? next : s.chats, activeId: s.activeId };
      });
    };
    window.addEventListener("hashchange", onHash);
    window.addEventListener("storage", onStorage);
    return () => {
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("storage", onStorage);
    };
  }, []);

  const createChat = useCallback(() => {
    setState((s) => {
      const id = newChatId();
      const next = [{ id, title: "New chat", updatedAt: Date.now() }, ...s.chats];
      saveChats(next);
      return { chats: next, activeId: id };
    });
  }, []);

  const selectChat = useCallback((id: string) => setState((s) => ({ ...s, activeId: id })), []);

  const deleteChat = useCallback(
    (id: string) => {
      transport.removeSession(id);
      removeMessages(id);
      clearStatus(id);
      setState((s) => {
        let next = s.chats.filter((c) => c.id !== id);
        let activeId = s.activeId;
        if (activeId === id) {
          if (next.length === 0) next = [{ id: newChatId(), title: "New chat", updatedAt: Date.now() }];
          activeId = next[0].id;
        }
        saveChats(next);
        return { chats: next, activeId };
      });
    },
    [transport],
  );

  // ChatView reports its title and activity so the list stays sorted and named.
  const touchChat = useCallback((id: string, title: string | undefined) => {
    setState((s) => {
      const current = s.chats.find((c) => c.id === id);
      if (!current || (title === undefined && current.updatedAt > Date.now() - 1000)) return s;
      if (title !== undefined && title === current.title) return s;
      const updated = { ...current, title: title ?? current.title, updatedAt: Date.now() };
      const next = [updated, ...s.chats.filter((c) => c.id !== id)];
      saveChats(next);
      return { ...s, chats: next };
    });
  }, []);

  return (
    <div className="app">
      <Sidebar
        chats={chats}
        activeId={activeId}
        online={online}
        onCreate={createChat}
        onSelect={selectChat}
        onDelete={deleteChat}
      />
      <ChatView key={activeId} chatId={activeId} transport={transport} onActivity={touchChat} queueSends={QUEUE_SENDS} />
    </div>
  );
}
