// The typed usage `@trigger.dev/sdk`'s documentation shows (frontend.mdx), with only the import
// changed, checked against the SDK's own task types: `typeof myChat` of a `chat.agent` is a
// `Task<Id, ChatTaskWirePayload<Msg, ClientData>>`. The SDK is the side-by-side suite's pinned
// devDependency (tests/official); this package itself does not depend on it. At the end: the
// transport's whole surface against the SDK's.
import { useChat } from "@ai-sdk/react";
import type { UIMessage } from "ai";
import type { Task } from "@trigger.dev/sdk";
import type {
  ChatTaskWirePayload,
  InferChatClientData as SdkInferChatClientData,
  InferChatUIMessage as SdkInferChatUIMessage,
  TriggerChatTransport as SdkTransport,
  TriggerChatTransportOptions as SdkTransportOptions,
} from "@trigger.dev/sdk/chat";
import { TriggerChatTransport, type InferChatClientData } from "trigger-chat-wasm";
import { useTriggerChatTransport, type InferChatUIMessage } from "trigger-chat-wasm/react";

type Msg = UIMessage<{ createdAt: number }, { weather: { city: string } }>;
type ClientData = { userId: string; plan: "free" | "pro" };
declare const myChat: Task<"my-chat", ChatTaskWirePayload<Msg, ClientData>, unknown>;
declare const plainChat: Task<"plain-chat", ChatTaskWirePayload<UIMessage, unknown>, unknown>;

// Exact type equality (not mere assignability).
type Equal<A, B> = (<V>() => V extends A ? 1 : 2) extends <V>() => V extends B ? 1 : 2 ? true : false;
function expectTrue<T extends true>(): T | void {}

// The inference helpers agree with the SDK's.
expectTrue<Equal<InferChatUIMessage<typeof myChat>, SdkInferChatUIMessage<typeof myChat>>>();
expectTrue<Equal<InferChatUIMessage<typeof myChat>, Msg>>();
expectTrue<Equal<InferChatUIMessage<typeof plainChat>, UIMessage>>();
expectTrue<Equal<InferChatClientData<typeof myChat>, SdkInferChatClientData<typeof myChat>>>();
expectTrue<Equal<InferChatClientData<typeof myChat>, ClientData>>();
expectTrue<Equal<InferChatClientData<typeof plainChat>, SdkInferChatClientData<typeof plainChat>>>();
expectTrue<Equal<InferChatClientData<typeof plainChat>, Record<string, unknown>>>();
// Unions, one member at a time (as the SDK's).
expectTrue<
  Equal<
    InferChatClientData<typeof myChat | typeof plainChat>,
    SdkInferChatClientData<typeof myChat | typeof plainChat>
  >
>();
expectTrue<Equal<InferChatUIMessage<typeof myChat | typeof plainChat>, Msg | UIMessage>>();
// Anything that is not a chat task.
expectTrue<Equal<InferChatUIMessage<string>, UIMessage>>();
expectTrue<Equal<InferChatClientData<Msg>, Record<string, unknown>>>();

declare function startChatSession(chatId: string, clientData: ClientData): Promise<{ publicAccessToken: string }>;
declare function mintChatToken(chatId: string): Promise<string>;

export function ChatPage({ chatId, userId }: { chatId: string; userId: string }) {
  const transport = useTriggerChatTransport<typeof myChat>({
    task: "my-chat",
    startSession: ({ chatId, clientData }) => startChatSession(chatId, clientData),
    accessToken: ({ chatId }) => mintChatToken(chatId),
    clientData: { userId, plan: "pro" },
  });
  expectTrue<Equal<typeof transport, TriggerChatTransport<Msg, ClientData>>>();
  const { messages } = useChat<InferChatUIMessage<typeof myChat>>({ id: chatId, transport });
  const first: Msg | undefined = messages[0];

  // The task id is checked against the task type.
  // @ts-expect-error not the task's id
  useTriggerChatTransport<typeof myChat>({ task: "other-chat", accessToken: ({ chatId }) => mintChatToken(chatId) });
  // So is clientData.
  useTriggerChatTransport<typeof myChat>({
    task: "my-chat",
    accessToken: ({ chatId }) => mintChatToken(chatId),
    // @ts-expect-error plan is "free" | "pro"
    clientData: { userId, plan: "gold" },
  });
  // A task without a clientData schema takes any record; its messages are plain UIMessages.
  const plain = useTriggerChatTransport<typeof plainChat>({
    task: "plain-chat",
    accessToken: ({ chatId }) => mintChatToken(chatId),
    clientData: { anything: 1 },
  });
  expectTrue<Equal<typeof plain, TriggerChatTransport<UIMessage, Record<string, unknown>>>>();
  // A message type as the parameter still works, and the task id is then any string.
  const byMessage = useTriggerChatTransport<Msg, ClientData>({
    task: "whatever",
    accessToken: ({ chatId }) => mintChatToken(chatId),
    clientData: { userId, plan: "free" },
  });
  expectTrue<Equal<typeof byMessage, TriggerChatTransport<Msg, ClientData>>>();
  return first;
}

// --- The whole surface ---------------------------------------------------------------------
// Options written for the SDK's transport are accepted by this one, and each public member of the
// SDK's transport exists here with a type that can stand in for it. An `onEvent` handler typed for
// the SDK's event union is accepted, although this package adds the `storage-error` and
// `connection-state` events; so is a `fetch` override typed for the SDK, although this one is
// also told about the `headStart` request (`ctx.endpoint === "head-start"`).
declare const sdkOptions: SdkTransportOptions;
export const fromSdkOptions = new TriggerChatTransport(sdkOptions);
// (`setOnEvent` and `setFetch` themselves cannot stand in for the SDK's: TypeScript compares a
// callback's parameters strictly there. Calling them with SDK-typed callbacks works, as below.)
export const asSdkTransport: { [K in Exclude<keyof SdkTransport, "setOnEvent" | "setFetch">]: SdkTransport[K] } =
  fromSdkOptions;
declare const sdkFetch: NonNullable<SdkTransportOptions["fetch"]>;
fromSdkOptions.setFetch(sdkFetch);
declare const sdkOnEvent: NonNullable<SdkTransportOptions["onEvent"]>;
fromSdkOptions.setOnEvent(sdkOnEvent);

// The SDK's class is not generic: code that names the plain type (a prop, a context) takes any
// transport. So does this one's plain type, whatever `clientData` or message type a transport
// was made with.
declare function ChatPane(props: { transport: TriggerChatTransport }): null;
ChatPane({
  transport: new TriggerChatTransport({ task: "t", accessToken: () => "token", clientData: { userId: "u1" } }),
});
declare const typedTransport: TriggerChatTransport<Msg, ClientData>;
ChatPane({ transport: typedTransport });
// A subclass overrides members as it can the SDK's: methods where the SDK declares methods
// (calling the originals), properties where it declares properties.
export class LoggingTransport extends TriggerChatTransport {
  override start(chatId: string) {
    return super.start(chatId);
  }
  override dispose(): void {
    super.dispose();
  }
}
const base = new TriggerChatTransport({ task: "t", accessToken: () => "token" });
export class WrappingTransport extends TriggerChatTransport {
  override sendMessages: TriggerChatTransport["sendMessages"] = (options) => base.sendMessages(options);
  override stopGeneration = async (chatId: string) => base.stopGeneration(chatId);
}

// The wire types this package re-declares are the SDK's.
import type { ChatInputChunk as SdkChatInputChunk } from "@trigger.dev/sdk/chat";
import type { ChatInputChunk, ChatTaskWirePayload as OurWirePayload } from "trigger-chat-wasm";
expectTrue<Equal<OurWirePayload<Msg, ClientData>, ChatTaskWirePayload<Msg, ClientData>>>();
expectTrue<Equal<ChatInputChunk<Msg, ClientData>, SdkChatInputChunk<Msg, ClientData>>>();
