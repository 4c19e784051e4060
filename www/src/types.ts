import type { UIMessage } from "ai";

/** The demo agent's tools, as the UI sees them. */
export type ChatTools = {
  getWeather: {
    input: { city: string };
    output: { city: string; forecast: string; temperatureC: number };
  };
};

/** The UI message type of the demo (passed to useChat and the transport). */
export type ChatMessage = UIMessage<unknown, Record<string, never>, ChatTools>;
