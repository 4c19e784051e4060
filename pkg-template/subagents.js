// Sub-agent messages: the chunks a parent agent forwards with `chat.forwardSubAgent` (transient
// `data-subagent` parts, in batches numbered per tool call) rebuilt into the sub-agent's message
// with the AI SDK's own reducer. Same names and shapes as `@trigger.dev/sdk/chat`.
//
// Each tool call gets one long-lived `readUIMessageStream`, fed batch by batch, so every chunk is
// reduced once and none is kept after that (the AI SDK still copies the message after each chunk:
// ai@7 without its text, ai@5/6 whole). Readers see the newest message at most once per
// `throttleMs` (that is when `onChange` runs).
//
// `ai` (a peer dependency) is imported on first use, so loading the package never loads it.
let aiModule;
const loadAi = () =>
  (aiModule ??= import("ai").catch((error) => {
    aiModule = undefined; // the next sub-agent tries again
    throw error;
  }));

/** Sub-agents whose stream finished are kept up to this many (the ones that finished first go
 * first: their tool calls have an output by then, which a card shows instead). */
const MAX_FINISHED = 64;
/** Sub-agents still running are kept up to this many: one whose parent was stopped mid-way
 * never gets its end, and the one fed longest ago goes first. */
const MAX_RUNNING = 64;
/** The chunk types after which a sub-agent's stream has ended (an `error` chunk does not end it:
 * the AI SDK goes on after one, as when one of several merged streams fails). */
const ENDINGS = new Set(["finish", "abort"]);

/** The data part type that carries a sub-agent's chunks on the parent chat's stream. */
export const SUB_AGENT_DATA_TYPE = "data-subagent";

function batchOf(part) {
  if (part === null || typeof part !== "object" || part.type !== SUB_AGENT_DATA_TYPE) return;
  const batch = part.data;
  if (batch === null || typeof batch !== "object") return;
  const { toolCallId, seq, chunks } = batch;
  if (typeof toolCallId !== "string" || !Number.isInteger(seq) || !Array.isArray(chunks)) return;
  return batch;
}

/**
 * A store of sub-agent messages keyed by the parent's tool call id. Pass every data part to
 * `onData` (it ignores other types and malformed batches); a batch already applied (a replay
 * after a reconnect or reload) or one that skips ahead of a missing batch is ignored.
 */
export function createSubAgentMessages(options = {}) {
  const throttleMs = options.throttleMs ?? 100;
  const onChange = options.onChange;
  const agents = new Map();
  let fed = 0; // batches applied, to order the running ones
  let timer;
  let disposed = false;

  const publish = () => {
    timer = undefined;
    let changed = false;
    for (const agent of agents.values()) {
      if (agent.latest !== agent.message) {
        agent.message = agent.latest;
        changed = true;
      }
    }
    if (changed && !disposed) {
      try {
        onChange?.();
      } catch {
        // The store must keep working when a listener throws.
      }
    }
  };
  const schedule = () => {
    if (timer === undefined && !disposed) timer = setTimeout(publish, throttleMs);
  };

  const open = (id) => {
    const agent = { next: 0, input: undefined, latest: undefined, message: undefined, finished: false };
    const source = new ReadableStream({
      start(controller) {
        agent.input = controller;
      },
    });
    // A malformed chunk ends the reduction (the reducer reports it and closes the stream): the
    // message stays as the chunks before it built it, and later batches have nowhere to go.
    (async () => {
      const { readUIMessageStream } = await loadAi();
      for await (const message of readUIMessageStream({ stream: source })) {
        if (disposed) return;
        agent.latest = message;
        schedule();
      }
    })().catch(() => {
      agent.input = undefined; // (`ai` did not load): later batches are not kept for nothing
      if (!agent.finished) finish(id, agent);
    });
    return agent;
  };

  // The input stays open after `finish`: an agent may write more after it (the SDK's
  // `onBeforeTurnComplete` writes data parts once the response is captured), in a later batch.
  // A stopped (`abort`) sub-agent has ended too, and so has one whose reduction ended: each
  // counts as finished, so a long-lived store lets it go in its turn.
  const feed = (agent, chunks) => {
    if (agent.input === undefined) return;
    try {
      for (const chunk of chunks) {
        // A copy: the reducer writes onto some chunks, and the part belongs to the caller.
        if (chunk !== null && typeof chunk === "object") agent.input.enqueue({ ...chunk });
        agent.finished ||= ENDINGS.has(chunk?.type);
      }
    } catch {
      agent.input = undefined; // the reduction already ended on an earlier malformed chunk
      agent.finished = true;
    }
  };

  // A store that lives across many chats keeps a bounded number of finished sub-agents: the
  // ones that finished first go first (a finished agent moves to the end of the map), never
  // the one that just finished.
  const letGo = (id, agent) => {
    try {
      agent.input?.close();
    } catch {
      // already closed by the reducer
    }
    agents.delete(id);
  };
  const evict = (justFinished) => {
    let finished = 0;
    for (const agent of agents.values()) if (agent.finished) finished++;
    for (const [id, agent] of agents) {
      if (finished <= MAX_FINISHED) break;
      if (!agent.finished || agent === justFinished) continue;
      letGo(id, agent);
      finished--;
    }
  };
  // Running ones past MAX_RUNNING (a new one just opened): the one fed longest ago goes.
  const evictRunning = () => {
    let running = 0;
    for (const agent of agents.values()) if (!agent.finished) running++;
    for (; running > MAX_RUNNING; running--) {
      let stale;
      for (const entry of agents) {
        if (!entry[1].finished && (stale === undefined || entry[1].fed < stale[1].fed)) stale = entry;
      }
      letGo(...stale);
    }
  };

  // A sub-agent that just ended goes to the end of the eviction order.
  const finish = (id, agent) => {
    agent.finished = true;
    if (agents.get(id) !== agent) return; // let go already, or the store was disposed
    agents.delete(id);
    agents.set(id, agent);
    evict(agent);
  };

  return {
    onData(part) {
      const batch = disposed ? undefined : batchOf(part);
      if (batch === undefined) return;
      let agent = agents.get(batch.toolCallId);
      const opened = agent === undefined;
      if (opened) {
        // (A first batch seen mid-way cannot be applied: nothing is opened for it.)
        if (batch.seq !== 0) return;
        agent = open(batch.toolCallId);
        agents.set(batch.toolCallId, agent);
      }
      if (batch.seq !== agent.next) return;
      agent.next += 1;
      agent.fed = ++fed;
      const wasFinished = agent.finished;
      feed(agent, batch.chunks);
      if (agent.finished && !wasFinished) finish(batch.toolCallId, agent);
      else if (opened) evictRunning();
    },
    get(toolCallId) {
      return agents.get(toolCallId)?.message;
    },
    dispose() {
      disposed = true;
      clearTimeout(timer);
      timer = undefined;
      for (const [id, agent] of agents) letGo(id, agent);
    },
  };
}
