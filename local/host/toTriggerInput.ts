/**
 * The handler-level form of a batch (`messages` and `context.triggerMetadata`, what a
 * `cardinality: 'many'` Event Hub handler receives), for callers that run the reconcile use case
 * without the local host: replay, the benchmark, the tests. It is not shaped here: the replay
 * lines go through the one converter (eventHubTriggerInput.ts) to the RPC input, and that through
 * @azure/functions' own conversion (its programming model, as the Node worker runs it, via
 * invokeFunction). The library does not export its converters, hence the invocation.
 */
import { app, trigger } from "@azure/functions";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toRpcEventHubBatch } from "./eventHubTriggerInput";
import type { FunctionRegistration } from "./functionRegistration";
import { invokeFunction, toProgrammingModel, type ProgrammingModel } from "./invokeFunction";
import { functionsCoreState } from "./loadFunctions";
import { toReceivedEventData } from "./receivedEventData";

/** The trigger's input for `cardinality: 'many'`: the messages array plus the trigger metadata. */
export interface EventHubTriggerInput {
  messages: unknown[];
  triggerMetadata: Record<string, unknown>;
}

/** Shapes a batch of replay lines (one partition) exactly as the Event Hub trigger hands it to a `cardinality: 'many'` handler. */
export async function toTriggerInput(
  events: readonly ReceivedEvent[],
  eventHubName = "twin-changes",
  consumerGroup = "$Default",
): Promise<EventHubTriggerInput> {
  const partition = { partitionId: events[0]?.partitionId ?? "0", eventHubName, consumerGroup, fullyQualifiedNamespace: "localhost" };
  const rpc = toRpcEventHubBatch(events.map(toReceivedEventData), partition);
  let received: EventHubTriggerInput | undefined;
  const registration: FunctionRegistration = {
    name: "toTriggerInput",
    bindings: {
      eventHubTrigger: { type: "eventHubTrigger", direction: "in", cardinality: "many", eventHubName, consumerGroup, connection: "TwinEvents" },
    },
    callback: (messages: unknown, context: unknown) => {
      const triggerMetadata = (context as { triggerMetadata?: Record<string, unknown> }).triggerMetadata ?? {};
      received = { messages: messages as unknown[], triggerMetadata };
    },
  };
  await invokeFunction(programmingModel(), registration, { inputData: [{ name: "eventHubTrigger", data: rpc.data }], triggerMetadata: rpc.triggerMetadata }, () => undefined);
  if (!received) throw new Error("toTriggerInput: @azure/functions did not call the handler");
  return received;
}

const PROBE = "__twinReconcilerProgrammingModelProbe";

/**
 * @azure/functions gives the core its ProgrammingModel on its first `app.*` call only. When no
 * function module was loaded yet, one registration is made and removed at once to get it.
 */
function programmingModel(): ProgrammingModel {
  const state = functionsCoreState();
  if (state.programmingModel === undefined) {
    app.generic(PROBE, { trigger: trigger.generic({ type: "eventHubTrigger" }), handler: () => undefined });
    state.functions.delete(PROBE);
  }
  return toProgrammingModel(state.programmingModel);
}
