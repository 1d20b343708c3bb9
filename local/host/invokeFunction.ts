import { randomUUID } from "node:crypto";
import { isRecord, type FunctionRegistration } from "./functionRegistration";
import type { RpcTypedData } from "./eventHubTriggerInput";

/** Log levels and categories as the worker reports them (`RpcLogLevel`, `RpcLogCategory`). */
export type LogLevel = "trace" | "debug" | "information" | "warning" | "error" | "critical" | "none";
export type LogSink = (entry: { level: LogLevel; category: string; functionName: string; message: string }) => void;

export interface RpcParameterBinding {
  name: string;
  data: RpcTypedData | { http: Record<string, unknown> };
}

export interface RpcRetryContext {
  retryCount: number;
  maxRetryCount: number;
  exception?: { message?: string; source?: string; stackTrace?: string };
}

export interface RpcInvocationRequest {
  inputData: RpcParameterBinding[];
  triggerMetadata?: Record<string, RpcTypedData>;
  retryContext?: RpcRetryContext;
}

/** The parts of `RpcInvocationResponse` the local host reads. */
export interface RpcInvocationResponse {
  returnValue?: unknown;
  outputData?: { name: string; data: unknown }[];
}

interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: (...args: unknown[]) => unknown): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<unknown>;
}

/** The library's `ProgrammingModel` as registered through `setProgrammingModel`. */
export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: unknown): InvocationModel | Promise<InvocationModel>;
}

export function toProgrammingModel(value: unknown): ProgrammingModel {
  if (!isRecord(value) || typeof value.getInvocationModel !== "function") {
    throw new Error("no programming model was registered: did the function modules call app.* with @azure/functions?");
  }
  return value as unknown as ProgrammingModel;
}

/**
 * Invokes a registered function the way the Node worker does: the library's own programming
 * model turns the RPC request into handler arguments (`getArguments`, which camel-cases trigger
 * metadata), calls the handler, and turns the result into an RPC response. Rejects when the
 * handler throws, as the worker reports a failed invocation.
 */
export async function invokeFunction(
  programmingModel: ProgrammingModel,
  registration: FunctionRegistration,
  request: RpcInvocationRequest,
  log: LogSink,
): Promise<RpcInvocationResponse> {
  const invocationId = randomUUID();
  const coreCtx = {
    invocationId,
    metadata: { name: registration.name, bindings: registration.bindings, retryOptions: registration.retryOptions },
    request: { invocationId, functionId: registration.name, ...request },
    state: undefined as string | undefined,
    log: (level: LogLevel, category: string, message: string) => log({ level, category, functionName: registration.name, message }),
  };
  const model = await programmingModel.getInvocationModel(coreCtx);
  const { context, inputs } = await model.getArguments();
  coreCtx.state = "invocation";
  const result = await model.invokeFunction(context, inputs, registration.callback);
  const response = await model.getResponse(context, result);
  if (!isRecord(response)) return {};
  const out: RpcInvocationResponse = { returnValue: response.returnValue };
  if (Array.isArray(response.outputData)) {
    out.outputData = response.outputData.filter(isRecord).map((o) => ({ name: String(o.name), data: o.data }));
  }
  return out;
}
