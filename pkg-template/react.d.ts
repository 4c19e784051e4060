// Type declarations for trigger-chat-wasm/react (hand-written). Mirrors the hooks of
// `@trigger.dev/sdk/chat/react` that apply to a browser transport.

import type { UIMessage } from "ai";
import type { TriggerChatTransport, TriggerChatTransportOptions } from "./index.js";

export type {
  ChatTransportEvent,
  ChatTransportSendSource,
  TriggerChatTransportOptions,
} from "./index.js";

/**
 * Options of `useTriggerChatTransport`: the transport's options. `onSessionChange`, `onEvent`,
 * `clientData`, `accessToken`, `startSession` and `fetch` are live (a new value is used by the
 * next send, even one made in the same tick as the render); the others are read once, when the
 * transport is created (remount with a new `key` to change them).
 */
export type UseTriggerChatTransportOptions<
  TClientData extends Record<string, unknown> = Record<string, unknown>,
> = TriggerChatTransportOptions<TClientData>;

/**
 * Creates one `TriggerChatTransport` per component instance and keeps it for the component's
 * lifetime. It is disposed when the component really unmounts (not by React StrictMode's
 * simulated unmount).
 *
 * ```tsx
 * const transport = useTriggerChatTransport<MyMessage>({
 *   task: "ai-chat",
 *   startSession: ({ chatId, clientData }) => startChatSession(chatId, clientData),
 *   accessToken: ({ chatId }) => mintChatToken(chatId),
 *   clientData: { userId: user.id },      // live: the next send uses the new value
 * });
 * const { messages, sendMessage } = useChat<MyMessage>({ id: chatId, transport });
 * ```
 */
export declare function useTriggerChatTransport<
  UI_MESSAGE extends UIMessage = UIMessage,
  TClientData extends Record<string, unknown> = Record<string, unknown>,
>(options: UseTriggerChatTransportOptions<TClientData>): TriggerChatTransport<UI_MESSAGE, TClientData>;

/** Options of `useMultiTabChat`. */
export type UseMultiTabChatOptions = {
  /**
   * How long (ms) a tab keeps broadcasting after it released its claim, so the final renders of a
   * reply reach the other tabs. @default 1500
   */
  releaseGraceMs?: number;
  /** Minimum interval (ms) between two broadcasts while a reply streams. @default 50 */
  throttleMs?: number;
};

/**
 * Keeps the tabs of one chat in sync. Requires `multiTab: true` on the transport; without it the
 * hook is inert (`isReadOnly` stays false).
 *
 * - `isReadOnly` is true while another tab owns the chat (is sending or streaming a turn): disable
 *   the composer. Sends from a read-only tab reject with code `read_only_tab`.
 * - The owning tab broadcasts its messages (throttled to animation frames), and keeps doing so for
 *   a short grace period after its claim is released, so the final state of a reply reaches the
 *   others.
 * - Only a tab that held the claim broadcasts: a tab that becomes writable, or one that just
 *   opened, never pushes its own (possibly stale) copy over the owner's.
 * - Read-only tabs apply what they receive with `setMessages`; the owner ignores broadcasts.
 *
 * ```tsx
 * const { messages, setMessages } = useChat({ id: chatId, transport });
 * const { isReadOnly } = useMultiTabChat(transport, chatId, messages, setMessages);
 * <textarea disabled={isReadOnly} placeholder={isReadOnly ? "Active in another tab" : "Message"} />
 * ```
 */
export declare function useMultiTabChat<T = UIMessage>(
  transport: TriggerChatTransport<any, any>,
  chatId: string,
  messages: T[],
  setMessages: (messages: T[]) => void,
  options?: UseMultiTabChatOptions,
): { isReadOnly: boolean };

/**
 * Sends custom actions through `useChat`, so the agent's response streams into the message list
 * and `status`, `error` and `stop` behave as for a message: `sendAction(action)` is
 * `sendMessage(undefined, { body: { action } })`, which the transport sends as
 * `trigger: "action"`.
 *
 * ```tsx
 * const { sendMessage } = useChat({ id: chatId, transport });
 * const { sendAction } = useChatActions({ sendMessage });
 * <button onClick={() => sendAction({ type: "undo" })}>Undo</button>
 * ```
 */
export declare function useChatActions(options: {
  /** `useChat`'s `sendMessage`. */
  sendMessage: (
    message: undefined,
    options?: { body?: object; headers?: Record<string, string> | Headers },
  ) => Promise<void> | void;
}): {
  /** Sends an action; resolves when `useChat` has finished the request. */
  sendAction: (action: unknown) => Promise<void>;
};
