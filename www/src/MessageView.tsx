import { memo } from "react";
import type { UIMessage } from "ai";
import type { ChatMessage } from "./types";

type Part = ChatMessage["parts"][number];
type WeatherPart = Extract<Part, { type: "tool-getWeather" }>;
type ResearchPart = Extract<Part, { type: "tool-research" }>;

type Props = {
  message: ChatMessage;
  streaming: boolean;
  canRespond: boolean;
  onApproval: (approvalId: string, approved: boolean) => void;
  /** A running sub-agent's message so far, by the parent's tool call id (useSubAgentMessages). */
  subAgents?: Record<string, UIMessage | undefined>;
};

const textOf = (message: UIMessage | undefined) =>
  (message?.parts ?? []).map((p) => (p.type === "text" ? p.text : "")).join("");

/** A research tool call: the sub-agent's reply live while it runs, then the tool's output. */
function ResearchCard({ part, live, running }: { part: ResearchPart; live: UIMessage | undefined; running: boolean }) {
  const done = part.state === "output-available";
  const text = textOf(done ? part.output : live);
  // (A reply stopped mid-call leaves the call as it was: say so instead of "working" for good.)
  const stopped = !done && !running;
  return (
    <div className="tool-card" data-testid="research-card" data-state={part.state}>
      <div className="tool-name">
        <span aria-hidden>⚙</span> research · {part.input?.topic ?? "…"} {done ? "" : stopped ? "(stopped)" : "(sub-agent working)"}
      </div>
      <p className={done ? "tool-result" : "muted"} data-testid="research-text">
        {text || (stopped ? "Stopped before the sub-agent answered." : "Starting the sub-agent…")}
      </p>
    </div>
  );
}

function WeatherCard({
  part,
  canRespond,
  onApproval,
  running,
}: { part: WeatherPart; running: boolean } & Omit<Props, "message" | "streaming">) {
  const city = part.input?.city ?? "…";
  let body: React.ReactNode;
  switch (part.state) {
    case "input-streaming":
    case "input-available":
      body = <p className="muted">Preparing the request…</p>;
      break;
    case "approval-requested":
      body = (
        <>
          <p>
            The assistant wants to look up the weather in <strong>{city}</strong>.
          </p>
          <div className="tool-actions">
            <button
              type="button"
              className="approve"
              disabled={!canRespond}
              onClick={() => onApproval(part.approval.id, true)}
              data-testid="approve"
            >
              Approve
            </button>
            <button
              type="button"
              className="deny"
              disabled={!canRespond}
              onClick={() => onApproval(part.approval.id, false)}
              data-testid="deny"
            >
              Deny
            </button>
          </div>
        </>
      );
      break;
    case "approval-responded":
      body = (
        <p className="muted">
          {!running
            ? "Answered, but the reply stopped before the agent went on."
            : part.approval.approved
              ? "Approved — running…"
              : "Denied — telling the agent…"}
        </p>
      );
      break;
    case "output-available":
      body = (
        <p className="tool-result" data-testid="tool-result">
          ☀ {part.output.city}: {part.output.forecast}, {part.output.temperatureC}°C
        </p>
      );
      break;
    case "output-denied":
      body = (
        <p className="muted" data-testid="tool-denied">
          Denied — the tool did not run.
        </p>
      );
      break;
    case "output-error":
      body = <p className="error-text">The tool failed: {part.errorText}</p>;
      break;
  }
  return (
    <div className="tool-card" data-testid="tool-card" data-state={part.state}>
      <div className="tool-name">
        <span aria-hidden>⚙</span> getWeather
      </div>
      {body}
    </div>
  );
}

export const MessageView = memo(function MessageView({ message, streaming, canRespond, onApproval, subAgents }: Props) {
  const isUser = message.role === "user";
  return (
    <div className={`message ${message.role}`} data-testid="message" data-role={message.role} data-message-id={message.id}>
      {!isUser && (
        <div className="avatar" aria-hidden>
          ◆
        </div>
      )}
      <div className="bubble">
        {message.parts.map((part, i) => {
          if (part.type === "text") {
            return (
              <p key={i} className="text" data-testid="text">
                {part.text}
                {streaming && i === message.parts.length - 1 && <span className="caret" aria-hidden />}
              </p>
            );
          }
          if (part.type === "tool-getWeather") {
            return <WeatherCard key={i} part={part} canRespond={canRespond} onApproval={onApproval} running={streaming} />;
          }
          if (part.type === "tool-research") {
            return <ResearchCard key={i} part={part} live={subAgents?.[part.toolCallId]} running={streaming} />;
          }
          if (part.type === "tool-inspectDocument") {
            return (
              <div key={i} className="tool-card" data-testid="inspect-card" data-state={part.state}>
                <div className="tool-name">
                  <span aria-hidden>⚙</span> inspectDocument · {part.input?.topic ?? "…"}
                </div>
                <p className="muted">
                  {part.state === "output-available"
                    ? part.output.findings
                    : streaming
                      ? "Reading… (steer the agent meanwhile)"
                      : "Stopped before the document was read."}
                </p>
              </div>
            );
          }
          if (part.type === "data-pending-message-injected") {
            return (
              <p key={i} className="injected" data-testid="injected">
                ↳ steered: {part.data.messages.map((m) => m.text).join("; ")}
              </p>
            );
          }
          return null;
        })}
        {streaming && message.parts.at(-1)?.type !== "text" && <span className="caret" aria-hidden />}
      </div>
    </div>
  );
});
