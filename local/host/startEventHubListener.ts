import { setMaxListeners } from "node:events";
import type { EventStream } from "../EventStream";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { triggerOf, type FunctionRegistration } from "./functionRegistration";
import type { RpcInvocationRequest, RpcRetryContext } from "./invokeFunction";
import { mayRetry, retryDelay } from "./retryDelay";
import { sleep } from "./sleep";
import { toRpcEventHubBatch, toRpcEventHubEvent, type PartitionInfo, type RpcEventHubInput } from "./eventHubTriggerInput";
import { toReceivedEventData } from "./receivedEventData";

export interface EventHubCounters {
  /** Batches delivered (each counted once, however often it was retried). */
  batches: number;
  events: number;
  /** Re-invocations of a batch after a throw. */
  retries: number;
  /** Batches given up on after the retry policy ran out (checkpointed anyway, as Azure does). */
  failures: number;
  lostEvents: number;
}

export interface EventHubListener {
  readonly functionName: string;
  readonly counters: EventHubCounters;
  /** Next sequence number to read, per partition (the in-memory checkpoint). */
  checkpoints(): Record<string, number>;
  /** True when every partition is waiting and has nothing left to read. */
  caughtUp(): boolean;
  stop(): Promise<void>;
}

export interface EventHubListenerOptions {
  registration: FunctionRegistration;
  stream: EventStream;
  eventHubName: string;
  consumerGroup: string;
  maxBatchSize: number;
  invoke: (request: RpcInvocationRequest) => Promise<unknown>;
  /** Called whenever a partition loop moves (batch done, gone idle): drained() re-checks then. */
  onProgress: () => void;
  warn: (message: string) => void;
  error: (message: string) => void;
}

interface PartitionState {
  next: number;
  idle: boolean;
}

/**
 * One consumer of an Event Hub function: per partition, a loop that reads batches in order,
 * invokes the function, retries a batch that threw under the function's retry policy, and
 * checkpoints (in memory) once the batch succeeded or the policy gave up — the checkpointing
 * Azure's trigger does even after a failure, which is why a lost batch is counted and logged loudly.
 */
export function startEventHubListener(options: EventHubListenerOptions): EventHubListener {
  const { registration, stream } = options;
  const trigger = triggerOf(registration);
  const many = String(trigger.binding.cardinality ?? "many").toLowerCase() !== "one";
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one waiter per partition
  const counters: EventHubCounters = { batches: 0, events: 0, retries: 0, failures: 0, lostEvents: 0 };
  const partitions = new Map<string, PartitionState>(stream.partitionIds.map((id) => [id, { next: 0, idle: false }]));

  const partitionInfo = (partitionId: string): PartitionInfo => ({
    partitionId,
    eventHubName: options.eventHubName,
    consumerGroup: options.consumerGroup,
    fullyQualifiedNamespace: "localhost",
  });

  const toRequest = (input: RpcEventHubInput, retryContext: RpcRetryContext | undefined): RpcInvocationRequest => {
    const request: RpcInvocationRequest = { inputData: [{ name: trigger.name, data: input.data }], triggerMetadata: input.triggerMetadata };
    if (retryContext) request.retryContext = retryContext;
    return request;
  };

  /** Invokes once per batch ('many') or once per event ('one'), retrying as the policy says. */
  const deliver = async (input: RpcEventHubInput, size: number, where: string): Promise<void> => {
    const policy = registration.retryOptions;
    for (let retryCount = 0; ; retryCount++) {
      try {
        const retryContext = policy ? { retryCount, maxRetryCount: policy.maxRetryCount } : undefined;
        await options.invoke(toRequest(input, retryContext));
        return;
      } catch (error) {
        if (abort.signal.aborted) return;
        const message = error instanceof Error ? error.message : String(error);
        if (!mayRetry(policy, retryCount)) {
          counters.failures++;
          counters.lostEvents += size;
          options.error(
            `LOST BATCH: ${registration.name} ${where} failed${policy ? ` after ${retryCount} retries` : " (no retry policy)"}: ${message}. ` +
              `Checkpointed past ${size} event(s) as Azure's Event Hub trigger does; they will not be delivered again.`,
          );
          return;
        }
        counters.retries++;
        const delay = policy ? retryDelay(policy, retryCount + 1) : 0;
        options.warn(`${registration.name} ${where} threw (${message}); retry ${retryCount + 1} in ${delay} ms`);
        await sleep(delay, abort.signal);
        if (abort.signal.aborted) return;
      }
    }
  };

  const runPartition = async (partitionId: string, state: PartitionState): Promise<void> => {
    const info = partitionInfo(partitionId);
    while (!abort.signal.aborted) {
      let batch: ReceivedEvent[];
      try {
        batch = stream.read(partitionId, state.next, options.maxBatchSize);
      } catch (error) {
        options.error(`${registration.name}: reading partition ${partitionId} failed: ${(error as Error).message}; retrying in 1 s`);
        await sleep(1000, abort.signal);
        continue;
      }
      if (batch.length === 0) {
        state.idle = true;
        options.onProgress();
        await stream.waitFor(partitionId, state.next, abort.signal);
        state.idle = false;
        continue;
      }
      const first = batch[0]!.sequenceNumber;
      const last = batch[batch.length - 1]!.sequenceNumber;
      const where = `partition ${partitionId} seq ${first}..${last}`;
      if (many) {
        await deliver(toRpcEventHubBatch(batch.map(toReceivedEventData), info), batch.length, where);
      } else {
        for (const event of batch) {
          if (abort.signal.aborted) break;
          await deliver(toRpcEventHubEvent(toReceivedEventData(event), info), 1, `partition ${partitionId} seq ${event.sequenceNumber}`);
        }
      }
      if (abort.signal.aborted) break;
      counters.batches++;
      counters.events += batch.length;
      state.next = last + 1;
      options.onProgress();
    }
  };

  const loops = [...partitions].map(([id, state]) =>
    runPartition(id, state).catch((error: unknown) => {
      options.error(`${registration.name}: partition ${id} loop stopped: ${error instanceof Error ? error.stack : String(error)}`);
    }),
  );

  return {
    functionName: registration.name,
    counters,
    checkpoints: () => Object.fromEntries([...partitions].map(([id, s]) => [id, s.next])),
    caughtUp: () => [...partitions].every(([id, s]) => s.idle && stream.read(id, s.next, 1).length === 0),
    async stop() {
      abort.abort();
      await Promise.all(loops);
    },
  };
}
