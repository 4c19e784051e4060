import { useChat } from "@ai-sdk/react";
import { lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from "ai";
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { isTriggerChatError, type TriggerChatTransport } from "trigger-chat-wasm";
import {
  useConnectionState,
  useDetachOnLeave,
  useMultiTabChat,
  usePendingMessages,
  useSubAgentMessages,
} from "trigger-chat-wasm/react";
import { useConnectionStatus } from "./connection";
import { MessageView } from "./MessageView";
import { loadChats, loadMessages, saveMessages, titleOf } from "./storage";
import type { ChatMessage } from "./types";

type Props = {
  chatId: string;
  transport: TriggerChatTransport<ChatMessage>;
  onActivity: (chatId: string, title: string | undefined) => void;
  /** The transport was made with `multiTabSend: "queue"`. */
  queueSends?: boolean;
};

const SUGGESTIONS = [
  { label: "Say hello", text: "Hello there!" },
  { label: "A slow, streamed reply", text: "Tell me something slow" },
  { label: "Weather (needs approval)", text: "What's the weather in Lisbon?" },
  { label: "Research (a sub-agent)", text: "Research WebAssembly" },
  { label: "Inspect (steer it meanwhile)", text: "Inspect the design doc" },
  { label: "An agent error", text: "Please show me an error" },
  { label: "End the conversation", text: "goodbye" },
];

const LINK_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
} as const;

/** Concatenates the text of a response stream (used for an action's short answer). */
async function readText(stream: ReadableStream<{ type: string; delta?: string }>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (r.value.type === "text-delta" && typeof r.value.delta === "string") text += r.value.delta;
  }
  return text.trim();
}

/** The running sub-agents of a message's research calls, or undefined (keeps MessageView memoized). */
function subAgentsOf(message: ChatMessage, get: (toolCallId: string) => UIMessage | undefined) {
  let found: Record<string, UIMessage | undefined> | undefined;
  for (const part of message.parts) {
    if (part.type === "tool-research" && part.state !== "output-available") {
      (found ??= {})[part.toolCallId] = get(part.toolCallId);
    }
  }
  return found;
}

export function ChatView({ chatId, transport, onActivity, queueSends = false }: Props) {
  // The transcript this tab saved; `resume` reconnects to a reply that was still streaming.
  const [initial] = useState(() => loadMessages(chatId));
  // Sub-agents a tool forwards (the research tool) render live from their transient parts.
  const subAgents = useSubAgentMessages();
  const { messages, setMessages, sendMessage, stop, status, error, clearError, addToolApprovalResponse } =
    useChat<ChatMessage>({
      id: chatId,
      messages: initial,
      transport,
      resume: initial.length > 0,
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
      onData: subAgents.onData,
    });
  // Opening another chat mid-reply leaves this one's agent running; coming back resumes it.
  useDetachOnLeave(transport, chatId);
  const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages);
  // Messages written while the agent answers: steered into the turn, or queued for the next.
  const pending = usePendingMessages({ transport, chatId, status, messages, setMessages, sendMessage });
  const connection = useConnectionStatus(chatId);
  // What the transport is doing on the network (offline, reconnecting, sends not yet acknowledged).
  const link = useConnectionState(transport, chatId);
  const [input, setInput] = useState("");
  const [notice, setNotice] = useState<string>();
  const [undoing, setUndoing] = useState(false);

  const closedByError = isTriggerChatError(error) && error.code === "session_closed";
  const closed = connection.closed !== undefined || closedByError || transport.sessionStatus(chatId) === "closed";
  const closedReason = connection.closed?.reason ?? transport.sessionClosedReason(chatId);
  const busy = status === "submitted" || status === "streaming";
  // With `multiTabSend: "queue"` a read-only tab may still write: its message waits for the other
  // tab's reply, then goes.
  // (Not while an undo is on its way: it cuts the conversation where it was when clicked.)
  const canWrite = (!isReadOnly || queueSends) && !closed && !undoing;
  const canSend = canWrite && !busy && input.trim() !== "";
  const canSteer = canWrite && busy && input.trim() !== "";

  // Persist the transcript (throttled while streaming; flushed when the tab goes away). A
  // read-only tab leaves it to the tab that owns the chat.
  const latest = useRef({ messages, dirty: false, readOnly: isReadOnly });
  latest.current.readOnly = isReadOnly;
  useEffect(() => {
    if (messages === latest.current.messages) return;
    latest.current.messages = messages;
    if (latest.current.readOnly) return;
    latest.current.dirty = true;
    const timer = setTimeout(() => {
      latest.current.dirty = false;
      saveMessages(chatId, latest.current.messages);
    }, 150);
    return () => clearTimeout(timer);
  }, [chatId, messages]);
  useEffect(() => {
    const flush = () => {
      // (Not for a chat just deleted: this runs as its view goes away, after the delete.)
      if (!latest.current.dirty || !loadChats().some((c) => c.id === chatId)) return;
      latest.current.dirty = false;
      saveMessages(chatId, latest.current.messages);
    };
    window.addEventListener("pagehide", flush);
    return () => {
      window.removeEventListener("pagehide", flush);
      flush();
    };
  }, [chatId]);

  const title = titleOf(messages);
  useEffect(() => {
    if (messages.length > 0) onActivity(chatId, title);
  }, [chatId, title, messages.length, onActivity]);

  // Keep the newest message in view while the user is at the bottom.
  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  const send = useCallback(
    (text: string) => {
      clearError();
      setNotice(undefined);
      pinned.current = true;
      void sendMessage({ text });
    },
    [clearError, sendMessage],
  );

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (canSteer) {
      pending.steer(input.trim()); // steers a streaming turn (queued until it streams)
      setInput("");
      return;
    }
    if (!canSend) return;
    send(input.trim());
    setInput("");
  };
  const onQueue = () => {
    if (!canSteer) return;
    pending.queue(input.trim());
    setInput("");
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) onSubmit(e);
  };

  // Stop: useChat's stop() ends the local request; stopGeneration reaches the agent, also after a
  // reload, when useChat's own abort cannot.
  const onStop = useCallback(() => {
    void stop();
    void transport.stopGeneration(chatId);
  }, [stop, transport, chatId]);

  // Undo: an action the agent handles (trigger "action"); the last exchange goes away here at
  // once, and the agent's acknowledgement shows as a notice.
  const lastUserIndex = messages.findLastIndex((m) => m.role === "user");
  const onUndo = async () => {
    if (lastUserIndex < 0) return;
    const undone = messages[lastUserIndex];
    setUndoing(true);
    setNotice(undefined);
    try {
      const stream = await transport.sendAction(chatId, { type: "undo", messageId: undone.id });
      setMessages((current) => {
        const at = current.findIndex((m) => m.id === undone.id);
        return at < 0 ? current : current.slice(0, at);
      });
      const answer = await readText(stream);
      setNotice(answer ? `Agent: ${answer}` : "Undone.");
    } catch (e) {
      setNotice(`Undo failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setUndoing(false);
    }
  };

  const onApproval = useCallback(
    (id: string, approved: boolean) => void addToolApprovalResponse({ id, approved }),
    [addToolApprovalResponse],
  );

  const placeholder = closed
    ? "This conversation has ended"
    : isReadOnly
      ? queueSends
        ? "Replying in another tab… a message written now is sent when it finishes"
        : "Replying in another tab…"
      : "Message the agent (Enter to send, Shift+Enter for a new line)";

  return (
    <main className="chat" data-testid="chat" data-chat-id={chatId} data-status={status}>
      <header className="chat-header">
        <div>
          <h1 className="chat-heading">{title ?? "New chat"}</h1>
          <div className={`status-line tone-${connection.tone}`} data-testid="status-line">
            <span className="dot" aria-hidden />
            {connection.text}
            {link.state !== "idle" && (
              <span className={`link link-${link.state}`} data-testid="connection" data-state={link.state}>
                {LINK_TEXT[link.state]}
                {link.pendingSends > 0 &&
                  ` · ${link.pendingSends} ${link.pendingSends === 1 ? "send" : "sends"} waiting for the server`}
              </span>
            )}
          </div>
        </div>
        <button
          type="button"
          className="ghost"
          onClick={onUndo}
          disabled={!canWrite || busy || undoing || lastUserIndex < 0}
          data-testid="undo"
          title="Undo the last exchange (sent to the agent as an action)"
        >
          ↶ Undo
        </button>
      </header>

      {isReadOnly && (
        <div className="banner info" role="status" data-testid="read-only-banner">
          This chat is active in another tab. Its reply appears here live;{" "}
          {queueSends && busy
            ? "your message is sent when it finishes."
            : queueSends
              ? "a message you write now is sent when it finishes."
              : "you can write again when it finishes."}
        </div>
      )}

      <div
        className="messages"
        role="log"
        aria-live="polite"
        ref={scroller}
        onScroll={(e) => {
          const el = e.currentTarget;
          pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
        data-testid="messages"
      >
        {messages.length === 0 ? (
          <div className="empty">
            <h2>What can I help with?</h2>
            <p>
              This agent runs on an emulated Trigger.dev backend. Replies stream through a transport
              written in Rust and compiled to WebAssembly; reload mid-reply and it picks up where it was.
            </p>
            <div className="suggestions">
              {SUGGESTIONS.map((s) => (
                <button key={s.label} type="button" disabled={!canWrite || busy} onClick={() => send(s.text)}>
                  {s.label}
                </button>
              ))}
            </div>
          </div>
        ) : (
          messages.map((message, i) => (
            <MessageView
              key={message.id}
              message={message}
              streaming={busy && i === messages.length - 1 && message.role === "assistant"}
              canRespond={canWrite && !busy}
              onApproval={onApproval}
              subAgents={subAgentsOf(message, subAgents.get)}
            />
          ))
        )}
        {status === "submitted" && (
          <div className="typing" data-testid="typing" role="status" aria-label="The agent is thinking">
            <span />
            <span />
            <span />
          </div>
        )}
      </div>

      {error && !closedByError && (
        <div className="banner error" role="alert" data-testid="error-banner">
          <span>
            {isTriggerChatError(error) && error.code === "read_only_tab"
              ? "Another tab is replying in this chat right now."
              : error.message}
          </span>
          <button type="button" className="link" onClick={clearError}>
            Dismiss
          </button>
        </div>
      )}
      {closed && (
        <div className="banner warn" role="alert" data-testid="closed-banner">
          This conversation has ended{closedReason ? ` (${closedReason})` : ""}. Start a new chat to keep
          talking.
        </div>
      )}
      {notice && (
        <div className="banner info" role="status" data-testid="notice">
          <span>{notice}</span>
          <button type="button" className="link" onClick={() => setNotice(undefined)}>
            Dismiss
          </button>
        </div>
      )}

      {pending.pending.length > 0 && (
        <ul className="pending" data-testid="pending">
          {pending.pending.map((m) => (
            <li key={m.id} data-mode={m.mode}>
              <span className="pending-mode">{m.mode === "steering" ? "Steering" : "Queued"}</span>
              {m.text}
              {m.mode === "queued" && status === "streaming" && (
                <button type="button" className="link" onClick={() => pending.promoteToSteering(m.id)}>
                  Steer now
                </button>
              )}
            </li>
          ))}
        </ul>
      )}

      <form className="composer" onSubmit={onSubmit}>
        <textarea
          value={input}
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder={placeholder}
          disabled={!canWrite}
          rows={1}
          aria-label="Message"
          data-testid="composer"
        />
        {busy && !isReadOnly ? (
          <>
            {input.trim() !== "" && (
              <>
                <button type="submit" className="send" disabled={!canSteer} data-testid="steer" title="Add this to the answer in progress">
                  Steer
                </button>
                <button type="button" className="ghost" onClick={onQueue} disabled={!canSteer} data-testid="queue" title="Send after this answer">
                  Queue
                </button>
              </>
            )}
            <button type="button" className="stop" onClick={onStop} data-testid="stop">
              ■ Stop
            </button>
          </>
        ) : (
          <button type="submit" className="send" disabled={!canSend} data-testid="send">
            Send
          </button>
        )}
      </form>
    </main>
  );
}
