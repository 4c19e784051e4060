import type { UIMessage } from "ai";

/** The demo agent's tools, as the UI sees them. */
export type ChatTools = {
  getWeather: {
    input: { city: string };
    output: { city: string; forecast: string; temperatureC: number };
  };
  /** Delegates to a sub-agent (`chat.forwardSubAgent`); the output is its final message. */
  research: {
    input: { topic: string };
    output: UIMessage;
  };
  inspectDocument: {
    input: { topic: string };
    output: { topic: string; findings: string };
  };
};

/** The data parts the demo agent writes into its messages. */
export type ChatData = {
  /** Steering messages injected between the agent's steps (usePendingMessages). */
  "pending-message-injected": { messageIds: string[]; messages: { id: string; text: string }[] };
};

/** The UI message type of the demo (passed to useChat and the transport). */
export type ChatMessage = UIMessage<unknown, ChatData, ChatTools>;
