import { setMaxListeners } from "node:events";
import {
  CloseReason,
  earliestEventPosition,
  EventHubConsumerClient,
  type CheckpointStore,
  type LoadBalancingOptions,
  type PartitionContext,
  type ReceivedEventData,
  type Subscription,
} from "@azure/event-hubs";
import { redact } from "../../shared/redact";
import { toRpcEventHubBatch, toRpcEventHubEvent, type RpcEventHubInput } from "./eventHubTriggerInput";
import { triggerOf, type FunctionRegistration } from "./functionRegistration";
import type { RpcInvocationRequest, RpcRetryContext } from "./invokeFunction";
import { mayRetry, retryDelay } from "./retryDelay";
import { sleep } from "./sleep";
import type { EventHubConnection } from "./eventHubConnection";

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

/** How the consumer claims partitions and waits for events; the defaults are the Functions Event Hubs extension's. */
export interface EventHubConsumerTuning {
  /** The SDK's load balancing; default greedy, claims renewed every 10 s, a claim expiring after 30 s. */
  loadBalancing?: LoadBalancingOptions;
  /** How long a partition's receive waits for a first event before an (ignored) empty batch; default 1. */
  maxWaitTimeInSeconds?: number;
}

export interface EventHubConsumer {
  readonly functionName: string;
  readonly counters: EventHubCounters;
  /** Next sequence number per partition this consumer checkpointed (what a new owner starts from). */
  checkpoints(): Record<string, number>;
  /** Partitions this consumer owns now (claimed through the checkpoint store, not yet lost or released). */
  ownedPartitions(): string[];
  /**
   * True when the consumer group has processed every partition of the hub: each partition is
   * empty or has a checkpoint at its last enqueued sequence number — whichever host processed it.
   */
  caughtUp(): Promise<boolean>;
  /** Finishes the batches in flight (checkpointing them), then releases its partitions and closes. */
  stop(): Promise<void>;
}

export interface EventHubConsumerOptions {
  registration: FunctionRegistration;
  connection: EventHubConnection;
  /** From the binding (after %setting% resolution); a connection string's EntityPath wins, as in Azure. */
  eventHubName: string;
  consumerGroup: string;
  checkpointStore: CheckpointStore;
  /**
   * Called with the consumer group's scope before subscribing, to delete its stored checkpoints and
   * ownership: for a hub that starts empty on every run (the emulator under `npm start`), whose
   * sequence numbers an earlier run's checkpoints would otherwise skip.
   */
  forgetCheckpoints?: (fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string) => Promise<void>;
  maxBatchSize: number;
  tuning?: EventHubConsumerTuning;
  invoke: (request: RpcInvocationRequest) => Promise<unknown>;
  /** Called whenever a batch is done (drained() re-checks then). */
  onProgress: () => void;
  warn: (message: string) => void;
  error: (message: string) => void;
}

/** The Functions Event Hubs extension's defaults (LoadBalancingUpdateInterval 10 s, PartitionOwnershipExpirationInterval 30 s). */
const defaultLoadBalancing: Required<LoadBalancingOptions> = {
  strategy: "greedy",
  updateIntervalInMs: 10_000,
  partitionOwnershipExpirationIntervalInMs: 30_000,
};

/** Delay between attempts to write a checkpoint while the store is down. */
const checkpointRetryMs = 1_000;

/**
 * One Event Hub function's consumer, as the Functions Event Hubs extension runs it: the unmodified
 * `EventHubConsumerClient.subscribe` over all partitions, sharing them with every other consumer of
 * the same consumer group through `checkpointStore` (the SDK's load balancing). Each batch (up to
 * `maxBatchSize`) becomes the worker's trigger input, is invoked, re-invoked under the function's
 * retry policy when it throws, and is checkpointed once it succeeded or the policy gave up — the
 * checkpointing Azure's trigger does even after a failure, which is why a lost batch is counted and
 * logged loudly. A new owner of a partition starts after its checkpoint, or at the earliest event
 * when it has none (the extension's default initial offset).
 */
export function startEventHubConsumer(options: EventHubConsumerOptions): EventHubConsumer {
  const { registration } = options;
  const trigger = triggerOf(registration);
  const many = String(trigger.binding.cardinality ?? "many").toLowerCase() !== "one";
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one sleeper per partition
  const counters: EventHubCounters = { batches: 0, events: 0, retries: 0, failures: 0, lostEvents: 0 };
  const nextSequenceNumber = new Map<string, number>();
  const owned = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let stopping = false;

  let client: EventHubConsumerClient;
  try {
    client = createClient(options);
  } catch (error) {
    // The SDK's messages may quote the connection string.
    throw new Error(`${registration.name}: cannot create its Event Hubs client: ${redact(error instanceof Error ? error.message : String(error))}`);
  }

  const toRequest = (input: RpcEventHubInput, retryContext: RpcRetryContext | undefined): RpcInvocationRequest => {
    const request: RpcInvocationRequest = { inputData: [{ name: trigger.name, data: input.data }], triggerMetadata: input.triggerMetadata };
    if (retryContext) request.retryContext = retryContext;
    return request;
  };

  /** Invokes once per batch ('many') or once per event ('one'), retrying as the policy says; false when stopped first. */
  const deliver = async (input: RpcEventHubInput, size: number, where: string): Promise<boolean> => {
    const policy = registration.retryOptions;
    for (let retryCount = 0; ; retryCount++) {
      try {
        const retryContext = policy ? { retryCount, maxRetryCount: policy.maxRetryCount } : undefined;
        await options.invoke(toRequest(input, retryContext));
        return true;
      } catch (error) {
        if (abort.signal.aborted) return false;
        const message = redact(error instanceof Error ? error.message : String(error));
        if (!mayRetry(policy, retryCount)) {
          counters.failures++;
          counters.lostEvents += size;
          options.error(
            `LOST BATCH: ${registration.name} ${where} failed${policy ? ` after ${retryCount} retries` : " (no retry policy)"}: ${message}. ` +
              `Checkpointed past ${size} event(s) as Azure's Event Hub trigger does; they will not be delivered again.`,
          );
          return true;
        }
        counters.retries++;
        const delay = policy ? retryDelay(policy, retryCount + 1) : 0;
        options.warn(`${registration.name} ${where} threw (${message}); retry ${retryCount + 1} in ${delay} ms`);
        await sleep(delay, abort.signal);
        if (abort.signal.aborted) return false;
      }
    }
  };

  /** Writes the checkpoint, retrying while the store is down (the batch is done: losing it would only re-deliver). */
  const checkpoint = async (context: PartitionContext, last: ReceivedEventData): Promise<void> => {
    for (;;) {
      try {
        await context.updateCheckpoint(last);
        nextSequenceNumber.set(context.partitionId, last.sequenceNumber + 1);
        return;
      } catch (error) {
        if (abort.signal.aborted) return;
        options.warn(
          `${registration.name}: checkpoint of partition ${context.partitionId} at seq ${last.sequenceNumber} failed ` +
            `(${redact(error instanceof Error ? error.message : String(error))}); retrying in ${checkpointRetryMs} ms`,
        );
        await sleep(checkpointRetryMs, abort.signal);
      }
    }
  };

  const processBatch = async (events: ReceivedEventData[], context: PartitionContext): Promise<void> => {
    const partition = {
      partitionId: context.partitionId,
      eventHubName: context.eventHubName,
      consumerGroup: context.consumerGroup,
      fullyQualifiedNamespace: context.fullyQualifiedNamespace,
    };
    const first = events[0]!.sequenceNumber;
    const last = events[events.length - 1]!;
    let done: boolean;
    if (many) {
      done = await deliver(toRpcEventHubBatch(events, partition), events.length, `partition ${context.partitionId} seq ${first}..${last.sequenceNumber}`);
    } else {
      done = true;
      for (const event of events) {
        done = await deliver(toRpcEventHubEvent(event, partition), 1, `partition ${context.partitionId} seq ${event.sequenceNumber}`);
        if (!done) break;
      }
    }
    // Stopped mid-retry: no checkpoint, so the partition's next owner delivers the batch again.
    if (!done) return;
    counters.batches++;
    counters.events += events.length;
    await checkpoint(context, last);
    options.onProgress();
  };

  const subscribe = (): Subscription => client.subscribe(
    {
      processInitialize: async (context) => {
        owned.add(context.partitionId);
      },
      processClose: async (reason, context) => {
        owned.delete(context.partitionId);
        if (reason === CloseReason.OwnershipLost && !stopping) options.warn(`${registration.name}: partition ${context.partitionId} was claimed by another host`);
      },
      processEvents: async (events, context) => {
        // Stopping: leave the batch unprocessed and unchecked, for the partition's next owner.
        if (stopping || events.length === 0) return;
        const work = processBatch(events, context);
        inFlight.add(work);
        try {
          await work;
        } finally {
          inFlight.delete(work);
        }
      },
      processError: async (error, context) => {
        if (stopping || error.name === "AbortError") return;
        const where = context.partitionId ? `partition ${context.partitionId}` : "load balancing";
        options.warn(`${registration.name}: Event Hubs ${where}: ${redact(error.message)}`);
      },
    },
    {
      startPosition: earliestEventPosition,
      maxBatchSize: options.maxBatchSize,
      maxWaitTimeInSeconds: options.tuning?.maxWaitTimeInSeconds ?? 1,
    },
  );
  const subscription: Promise<Subscription | undefined> = (async () => {
    if (options.forgetCheckpoints) {
      // The first failure is not reported: a store that cannot open at all (a bad setting, a held
      // PGlite folder) fails the process's own start-up in the same moment, with one clear line.
      for (let attempt = 1; ; attempt++) {
        try {
          await options.forgetCheckpoints(client.fullyQualifiedNamespace, client.eventHubName, options.consumerGroup);
          break;
        } catch (error) {
          if (abort.signal.aborted) return undefined;
          if (attempt > 1) options.warn(`${registration.name}: forgetting the previous run's checkpoints failed (${redact(error instanceof Error ? error.message : String(error))}); retrying in ${checkpointRetryMs} ms`);
          await sleep(checkpointRetryMs, abort.signal);
        }
      }
    }
    return abort.signal.aborted ? undefined : subscribe();
  })();

  const caughtUp = async (): Promise<boolean> => {
    if (!(await subscription)) return false;
    const ids = await client.getPartitionIds({ abortSignal: abort.signal });
    const checkpoints = await options.checkpointStore.listCheckpoints(client.fullyQualifiedNamespace, client.eventHubName, options.consumerGroup);
    for (const partitionId of ids) {
      const properties = await client.getPartitionProperties(partitionId, { abortSignal: abort.signal });
      if (properties.isEmpty) continue;
      const done = checkpoints.find((c) => c.partitionId === partitionId);
      if (done?.sequenceNumber === undefined || done.sequenceNumber < properties.lastEnqueuedSequenceNumber) return false;
    }
    return true;
  };

  let stopped: Promise<void> | undefined;
  return {
    functionName: registration.name,
    counters,
    checkpoints: () => Object.fromEntries([...nextSequenceNumber].sort(([a], [b]) => Number(a) - Number(b))),
    ownedPartitions: () => [...owned].sort((a, b) => Number(a) - Number(b)),
    caughtUp,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        // Retries stop waiting; an invocation already running finishes and its batch is checkpointed.
        abort.abort();
        await Promise.all([...inFlight]);
        await (await subscription)?.close().catch((error: unknown) => options.warn(`${registration.name}: closing the subscription: ${redact(String(error))}`));
        await client.close().catch(() => undefined);
      })();
      return stopped;
    },
  };
}

function createClient(options: EventHubConsumerOptions): EventHubConsumerClient {
  const clientOptions = {
    loadBalancingOptions: { ...defaultLoadBalancing, ...options.tuning?.loadBalancing },
    userAgent: "twin-reconciler-local-host",
  };
  const { connection, consumerGroup, checkpointStore } = options;
  if (!options.eventHubName && !(connection.kind === "connectionString" && connection.entityPath)) {
    throw new Error("the trigger has no eventHubName and its connection string no EntityPath");
  }
  if (connection.kind === "connectionString") {
    // A connection string naming its hub (EntityPath) wins over the binding's eventHubName, as in Azure.
    return connection.entityPath
      ? new EventHubConsumerClient(consumerGroup, connection.connectionString, checkpointStore, clientOptions)
      : new EventHubConsumerClient(consumerGroup, connection.connectionString, options.eventHubName, checkpointStore, clientOptions);
  }
  return new EventHubConsumerClient(consumerGroup, connection.fullyQualifiedNamespace, options.eventHubName, connection.credential, checkpointStore, clientOptions);
}
