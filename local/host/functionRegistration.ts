/**
 * What `app.*` registers with the (stand-in) `@azure/functions-core`, narrowed from `unknown`:
 * the function metadata the worker would send to the host (bindings, retry options) and the raw
 * handler. The core's own types are not on npm (Azure/azure-functions-nodejs-library `types-core`),
 * so the shapes the local host relies on are written here.
 */
export interface BindingInfo {
  type: string;
  direction: string;
  [key: string]: unknown;
}

/** An RPC duration as `toRpcDuration` writes it (whole seconds). */
export interface RpcDuration {
  seconds?: number;
  nanos?: number;
}

export interface RetryOptions {
  strategy: "fixedDelay" | "exponentialBackoff";
  maxRetryCount: number;
  delayInterval?: RpcDuration | number;
  minimumInterval?: RpcDuration | number;
  maximumInterval?: RpcDuration | number;
}

export interface FunctionRegistration {
  name: string;
  bindings: Record<string, BindingInfo>;
  retryOptions?: RetryOptions;
  /** The raw user handler, as the library hands it to `registerFunction`. */
  callback: (...args: unknown[]) => unknown;
}

export interface TriggerBinding {
  name: string;
  binding: BindingInfo;
}

/** The trigger binding (the one binding whose type ends with "Trigger"). */
export function triggerOf(registration: FunctionRegistration): TriggerBinding {
  for (const [name, binding] of Object.entries(registration.bindings)) {
    if (binding.direction === "in" && /trigger$/i.test(binding.type)) return { name, binding };
  }
  throw new Error(`function "${registration.name}" has no trigger binding; register it with app.http/app.timer/app.eventHub`);
}

/** The registration as captured by the core stand-in, validated field by field. */
export function toFunctionRegistration(name: string, captured: unknown): FunctionRegistration {
  if (!isRecord(captured) || !isRecord(captured.metadata) || typeof captured.callback !== "function") {
    throw new Error(`registration of "${name}" is not {metadata, callback}: is local/host/functionsCore.js the core in use?`);
  }
  const { metadata } = captured;
  const bindings: Record<string, BindingInfo> = {};
  if (isRecord(metadata.bindings)) {
    for (const [key, value] of Object.entries(metadata.bindings)) {
      if (isRecord(value) && typeof value.type === "string" && typeof value.direction === "string") {
        bindings[key] = { ...value, type: value.type, direction: value.direction };
      }
    }
  }
  const registration: FunctionRegistration = {
    name,
    bindings,
    callback: captured.callback as (...args: unknown[]) => unknown,
  };
  const retry = metadata.retryOptions;
  if (isRecord(retry) && (retry.strategy === "fixedDelay" || retry.strategy === "exponentialBackoff")) {
    registration.retryOptions = {
      strategy: retry.strategy,
      maxRetryCount: typeof retry.maxRetryCount === "number" ? retry.maxRetryCount : 0,
      delayInterval: toDurationField(retry.delayInterval),
      minimumInterval: toDurationField(retry.minimumInterval),
      maximumInterval: toDurationField(retry.maximumInterval),
    };
  }
  return registration;
}

function toDurationField(value: unknown): RpcDuration | number | undefined {
  if (typeof value === "number") return value;
  if (isRecord(value)) {
    const d: RpcDuration = {};
    if (typeof value.seconds === "number") d.seconds = value.seconds;
    if (typeof value.nanos === "number") d.nanos = value.nanos;
    return d;
  }
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
