import type { ChatSummary } from "./storage";

type Props = {
  chats: ChatSummary[];
  activeId: string;
  online: boolean;
  onCreate: () => void;
  onSelect: (id: string) => void;
  onDelete: (id: string) => void;
};

function ago(timestamp: number): string {
  const seconds = Math.max(0, Math.round((Date.now() - timestamp) / 1000));
  if (seconds < 60) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return new Date(timestamp).toLocaleDateString();
}

export function Sidebar({ chats, activeId, online, onCreate, onSelect, onDelete }: Props) {
  return (
    <aside className="sidebar">
      <div className="brand">
        <span className="brand-mark" aria-hidden>
          ◆
        </span>
        <div>
          <div className="brand-name">Trigger Chat</div>
          <div className="brand-sub">Rust + WebAssembly transport</div>
        </div>
      </div>
      <button type="button" className="new-chat" onClick={onCreate} data-testid="new-chat">
        <span className="plus" aria-hidden>+</span> New chat
      </button>
      <nav className="chat-list" aria-label="Chats">
        {chats.map((chat) => (
          <div
            key={chat.id}
            className={`chat-item${chat.id === activeId ? " active" : ""}`}
            data-testid="chat-item"
            data-chat-id={chat.id}
          >
            <button
              type="button"
              className="chat-open"
              onClick={() => onSelect(chat.id)}
              aria-current={chat.id === activeId ? "page" : undefined}
            >
              <span className="chat-title">{chat.title}</span>
              <span className="chat-time">{ago(chat.updatedAt)}</span>
            </button>
            <button
              type="button"
              className="chat-delete"
              title="Delete chat"
              aria-label={`Delete ${chat.title}`}
              onClick={() => onDelete(chat.id)}
            >
              ×
            </button>
          </div>
        ))}
      </nav>
      <footer className="sidebar-footer">
        <span className={`dot ${online ? "ok" : "error"}`} aria-hidden />
        {online ? "Online" : "Offline — messages wait (even if you close the tab) and replies resume when you reconnect"}
      </footer>
    </aside>
  );
}
