import type { EventHubConsumerClient, EventPosition, ReceivedEventData } from "@azure/event-hubs";
import { redact } from "../../shared/redact";
import { toReceivedEvent } from "../host/receivedEventData";

/** Why a capture ended. */
export type CaptureStop = "count" | "duration" | "interrupted";

export interface CaptureOptions {
  /** Where reading starts, in every partition. */
  startPosition: EventPosition;
  /** Stop after this many events in all (exactly this many lines are written). */
  count?: number;
  /** Stop after this long (ms). */
  durationMs?: number;
  /** Stop when this aborts (Ctrl-C): what was received is already written. */
  signal?: AbortSignal;
  /** Takes one JSONL line (with its newline); written before the next batch of that partition is asked for. */
  write: (line: string) => void;
  /** Progress lines for stderr (no newline). */
  progress?: (line: string) => void;
  /** How often progress is reported while events arrive (ms, default 5000). */
  progressEveryMs?: number;
  /** Events per batch asked of the SDK (default 100). */
  maxBatchSize?: number;
}

export interface CaptureResult {
  total: number;
  /** Events written per partition id. */
  perPartition: Record<string, number>;
  stoppedBy: CaptureStop;
  seconds: number;
}

/** The consumer could not go on (bad credentials, no such hub or consumer group, unreachable endpoint). Its message is redacted. */
export class CaptureError extends Error {
  override readonly name = "CaptureError";
}

/**
 * Records events from every partition of the client's Event Hub as replay lines (`toReceivedEvent`),
 * each partition in order, until `count` events, `durationMs` or `signal` — whichever comes first.
 * Reads through `EventHubConsumerClient.subscribe` with no checkpoint store: nothing is claimed or
 * checkpointed, so it runs beside the production consumer (in a consumer group of its own: a
 * group allows 5 readers per partition). An error the SDK reports after its own retries ends the
 * capture with a CaptureError; the lines written so far stay.
 */
export async function captureEvents(client: Pick<EventHubConsumerClient, "subscribe" | "eventHubName" | "getPartitionIds">, options: CaptureOptions): Promise<CaptureResult> {
  const started = Date.now();
  const perPartition: Record<string, number> = {};
  // Asked first, with the client's retry options: subscribe's own loop retries a refused connection or a
  // wrong key for minutes before it reports anything.
  try {
    for (const id of await client.getPartitionIds(options.signal ? { abortSignal: options.signal } : {})) perPartition[id] = 0;
  } catch (error) {
    if (options.signal?.aborted) return { total: 0, perPartition, stoppedBy: "interrupted", seconds: (Date.now() - started) / 1000 };
    throw new CaptureError(redact(`reading ${client.eventHubName} failed: ${oneLine(error as Error)}`));
  }
  let total = 0;
  let stopped = false;
  let settle!: (outcome: { stop: CaptureStop } | { error: Error }) => void;
  const outcome = new Promise<{ stop: CaptureStop } | { error: Error }>((resolve) => (settle = resolve));
  const finish = (value: { stop: CaptureStop } | { error: Error }): void => {
    if (stopped) return;
    stopped = true;
    settle(value);
  };

  const describe = (): string =>
    `${total} events (${
      Object.keys(perPartition)
        .sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))
        .map((id) => `partition ${id}: ${perPartition[id]}`)
        .join(", ") || "no partition yet"
    })`;
  let reported = -1;
  const report = (): void => {
    if (total === reported) return;
    reported = total;
    options.progress?.(`capture: ${describe()}`);
  };

  if (options.count === 0) finish({ stop: "count" });
  const onAbort = (): void => finish({ stop: "interrupted" });
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = options.durationMs === undefined ? undefined : setTimeout(() => finish({ stop: "duration" }), options.durationMs);
  const ticker = setInterval(report, options.progressEveryMs ?? 5000);

  const subscription = client.subscribe(
    {
      processInitialize: async (context) => {
        perPartition[context.partitionId] ??= 0;
      },
      processEvents: async (events: ReceivedEventData[], context) => {
        if (stopped || events.length === 0) return;
        const room = options.count === undefined ? events.length : Math.min(events.length, options.count - total);
        // Written synchronously, before the next batch of this partition is requested: lines stay in order.
        let text = "";
        for (const event of events.slice(0, room)) text += `${JSON.stringify(toReceivedEvent(event, context.partitionId))}\n`;
        options.write(text);
        total += room;
        perPartition[context.partitionId] = (perPartition[context.partitionId] ?? 0) + room;
        if (options.count !== undefined && total >= options.count) finish({ stop: "count" });
      },
      processError: async (error, context) => {
        const where = context.partitionId ? ` (partition ${context.partitionId})` : "";
        // A reader with an owner level (the Functions host, the local host) holds the partition in this consumer group.
        const hint = error.name === "ReceiverDisconnectedError" || (error as { code?: unknown }).code === "ReceiverDisconnectedError" ? "; capture with a consumer group of your own (--consumer-group NAME)" : "";
        finish({ error: new CaptureError(redact(`reading ${client.eventHubName} failed${where}: ${oneLine(error)}${hint}`)) });
      },
    },
    { startPosition: options.startPosition, maxBatchSize: options.maxBatchSize ?? 100, maxWaitTimeInSeconds: 1 },
  );

  try {
    const result = await outcome;
    if ("error" in result) throw result.error;
    return { total, perPartition, stoppedBy: result.stop, seconds: (Date.now() - started) / 1000 };
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
    options.signal?.removeEventListener("abort", onAbort);
    await subscription.close().catch(() => undefined);
    report();
  }
}

/** An SDK error in one line: its code and message; for the retries' AggregateError, the distinct messages of its attempts. */
function oneLine(error: Error): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map((e: unknown) => (e instanceof Error ? oneLine(e) : String(e))))].join("; ");
  }
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  const text = `${typeof code === "string" && !message.includes(code) ? `${code}: ` : ""}${message}`;
  return text.replace(/\s*\n\s*/g, " ");
}
