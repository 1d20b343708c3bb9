import { closeSync, existsSync, openSync, statSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { earliestEventPosition, EventHubConsumerClient, latestEventPosition, type EventPosition } from "@azure/event-hubs";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { parseTime } from "../../shared/events/decodeTwinChanges";
import { redact } from "../../shared/redact";
import { parseDuration } from "../../shared/policy/parseDuration";
import { UsageError } from "../startupFailure";
import { captureEvents, type CaptureResult } from "./captureEvents";

export const CAPTURE_USAGE =
  "usage: twin-reconciler capture (--connection-string CS [--hub NAME] | --namespace NS.servicebus.windows.net --hub NAME) [--consumer-group CG] [--from earliest|latest|ISO-TIME|seq:N] [--out FILE] [--duration D] [--count N]";

export const CAPTURE_HELP = `${CAPTURE_USAGE}

Records the events of an Event Hub — or of an Event Hubs-compatible endpoint, such as an IoT Hub's
built-in endpoint or the local emulator's — as replay lines, one JSON event per line, exactly as
\`twin-reconciler replay FILE.jsonl\` reads them. Every partition is read, each in order; nothing
is checkpointed or claimed, so it runs beside the reconcile function.

Where to read (one of):
  --connection-string CS   an Event Hubs connection string (Endpoint=sb://…;SharedAccessKeyName=…;
                           SharedAccessKey=…[;EntityPath=HUB]), e.g. the "Event Hub-compatible
                           endpoint" of an IoT Hub, or TWIN_EVENTS_CONNECTION as \`npm start\` prints
                           it. Never printed. Pass it from a variable ("$CS") to keep it out of
                           your shell history.
  --namespace NS           the fully qualified namespace (NS.servicebus.windows.net), signed in
                           with DefaultAzureCredential (az login, environment, managed identity);
                           needs the "Azure Event Hubs Data Receiver" role. Requires --hub.
  --hub NAME               the Event Hub (entity) name; optional with a connection string that
                           carries EntityPath (then it must match).

What to read:
  --consumer-group CG      default $Default. Use a group of your own: the Functions host (and the
                           local host) read their group with owner levels, which shut other
                           readers out; Event Hubs allows 5 readers per partition and group.
  --from POSITION          where to start in every partition: earliest (default: all the hub
                           retains), latest (only events sent from now on), an ISO-8601 time
                           (events enqueued after it, e.g. 2026-03-01T08:00:00Z), or seq:N
                           (from sequence number N, inclusive, in each partition).

Where to write and when to stop:
  --out FILE               write the lines to FILE (replaced if it exists); default stdout.
  --duration D             stop after D (e.g. 30s, 10m, 1h, PT10M).
  --count N                stop after N events in all.
                           With neither, it runs until Ctrl-C; with both, whichever comes first.
                           Every event received is written before it exits.
  -h, --help               this text.

Progress (events per partition and in all) goes to stderr. Exit 0 when it stopped as asked
(count, duration, Ctrl-C), 1 when reading failed (credentials, hub, consumer group, endpoint),
2 with one line for unusable arguments.`;

/** A capture the command line asked for, validated. */
export interface CaptureRequest {
  source: { kind: "connectionString"; connectionString: string; hub: string | undefined } | { kind: "namespace"; namespace: string; hub: string };
  consumerGroup: string;
  startPosition: EventPosition;
  out: string | undefined;
  durationMs: number | undefined;
  count: number | undefined;
}

/**
 * Parses `capture`'s arguments (without the command word). Returns "help" for --help; throws a
 * UsageError (one line, never the connection string) for anything unusable.
 */
export function parseCaptureArgs(argv: readonly string[]): CaptureRequest | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        "connection-string": { type: "string" },
        namespace: { type: "string" },
        hub: { type: "string" },
        "consumer-group": { type: "string" },
        from: { type: "string" },
        out: { type: "string" },
        duration: { type: "string" },
        count: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    // parseArgs quotes the offending argument: an option typo next to a secret could echo it, so name the option only.
    throw new UsageError(`${argumentProblem(error as Error)}; ${CAPTURE_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`capture takes no positional arguments (got ${positionals.length}); ${CAPTURE_USAGE}`);

  const hub = values.hub === undefined ? undefined : checkName("--hub", values.hub);
  let source: CaptureRequest["source"];
  if (values["connection-string"] !== undefined && values.namespace !== undefined) {
    throw new UsageError("give --connection-string or --namespace, not both");
  } else if (values["connection-string"] !== undefined) {
    source = { kind: "connectionString", connectionString: checkConnectionString(values["connection-string"], hub), hub };
  } else if (values.namespace !== undefined) {
    if (hub === undefined) throw new UsageError("--namespace needs --hub NAME (the Event Hub to read)");
    source = { kind: "namespace", namespace: checkNamespace(values.namespace), hub };
  } else {
    throw new UsageError(`capture needs --connection-string CS or --namespace NS.servicebus.windows.net --hub NAME; ${CAPTURE_USAGE}`);
  }

  let durationMs: number | undefined;
  if (values.duration !== undefined) {
    try {
      durationMs = parseDuration(values.duration, { name: "--duration", minMs: 1 });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  let count: number | undefined;
  if (values.count !== undefined) {
    if (!/^\d+$/.test(values.count.trim()) || !Number.isSafeInteger(Number(values.count)) || Number(values.count) < 1) {
      throw new UsageError(`--count must be a whole number of events, at least 1, got "${shown(values.count)}"`);
    }
    count = Number(values.count);
  }
  const out = values.out === undefined ? undefined : checkOut(values.out);
  return {
    source,
    consumerGroup: values["consumer-group"] === undefined ? "$Default" : checkName("--consumer-group", values["consumer-group"]),
    startPosition: parseStartPosition(values.from ?? "earliest"),
    out,
    durationMs,
    count,
  };
}

/** `--from`: earliest | latest | ISO-8601 time | seq:N. */
export function parseStartPosition(text: string): EventPosition {
  const value = text.trim();
  if (value === "earliest") return earliestEventPosition;
  if (value === "latest") return latestEventPosition;
  const seq = /^seq:(\d+)$/.exec(value);
  if (seq) {
    const sequenceNumber = Number(seq[1]);
    if (Number.isSafeInteger(sequenceNumber)) return { sequenceNumber, isInclusive: true };
  }
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) {
    const time = parseTime(value);
    if (time) return { enqueuedOn: new Date(time) };
  }
  throw new UsageError(`--from must be earliest, latest, an ISO-8601 time (2026-03-01T08:00:00Z) or seq:N, got "${shown(text)}"`);
}

/** The pieces of a connection string, checked without ever putting its text in a message. */
function checkConnectionString(text: string, hub: string | undefined): string {
  const parts = new Map<string, string>();
  for (const piece of text.split(";")) {
    const at = piece.indexOf("=");
    if (at > 0) parts.set(piece.slice(0, at).trim().toLowerCase(), piece.slice(at + 1).trim());
  }
  const problem = (what: string) => new UsageError(`--connection-string ${what} (value not shown: it holds a key)`);
  const endpoint = parts.get("endpoint");
  if (!endpoint) throw problem("has no Endpoint=sb://…");
  if (!/^sb:\/\/[^/\s;]+\/?$/i.test(endpoint)) throw problem("has an Endpoint that is not sb://HOST[:PORT]/");
  if (!parts.get("sharedaccesssignature") && !(parts.get("sharedaccesskeyname") && parts.get("sharedaccesskey"))) {
    throw problem("needs SharedAccessKeyName and SharedAccessKey (or SharedAccessSignature)");
  }
  const entityPath = parts.get("entitypath");
  if (!entityPath && hub === undefined) throw problem("names no EntityPath: add --hub NAME");
  if (entityPath && hub !== undefined && entityPath !== hub) throw problem("names another Event Hub in EntityPath than --hub");
  return text;
}

function checkNamespace(text: string): string {
  const host = text.trim().replace(/^sb:\/\//i, "").replace(/\/$/, "");
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?$/i.test(host)) {
    throw new UsageError(`--namespace must be a fully qualified namespace such as my-namespace.servicebus.windows.net, got "${shown(text)}"`);
  }
  return host;
}

/** Event Hub and consumer group names: 1–256 characters, no separators or control characters. */
function checkName(option: string, text: string): string {
  if (text.length === 0 || text.length > 256 || /[\s;/\\?#]/.test(text) || [...text].some((c) => c.charCodeAt(0) < 0x20)) {
    throw new UsageError(`${option} must be an Event Hubs name (1-256 characters, no spaces, ';', '/', '?' or '#'), got "${shown(text)}"`);
  }
  return text;
}

function checkOut(file: string): string {
  if (file === "") throw new UsageError("--out needs a file name");
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`--out ${file} is a folder; give a file`);
  const folder = dirname(resolve(file));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UsageError(`--out ${file}: no such folder ${folder}`);
  return file;
}

function argumentProblem(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  const option = /'(-{1,2}[A-Za-z0-9-]+)/.exec(error.message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option ?? ""}`.trim();
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") return `option ${option ?? ""} needs a value`.replace("  ", " ");
  return "unusable arguments";
}

function shown(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** A command line fails within seconds when nothing answers (the SDK's defaults wait 30 s and more between tries). */
const RETRY_OPTIONS = { retryOptions: { maxRetries: 3, retryDelayInMs: 1000, maxRetryDelayInMs: 10_000 } };

function createConsumerClient(request: CaptureRequest, credential: TokenCredential | undefined): EventHubConsumerClient {
  const { source } = request;
  try {
    if (source.kind === "namespace") {
      return new EventHubConsumerClient(request.consumerGroup, source.namespace, source.hub, credential ?? new DefaultAzureCredential(), RETRY_OPTIONS);
    }
    return source.hub === undefined
      ? new EventHubConsumerClient(request.consumerGroup, source.connectionString, RETRY_OPTIONS)
      : new EventHubConsumerClient(request.consumerGroup, source.connectionString, source.hub, RETRY_OPTIONS);
  } catch (error) {
    // The SDK's own check of the connection string; its message is redacted all the same.
    throw new UsageError(redact(`--connection-string is not usable: ${(error as Error).message}`));
  }
}

export interface CaptureCommandIo {
  /** stdout, when there is no --out. */
  out: (text: string) => void;
  /** Progress and the summary (stderr). */
  err: (text: string) => void;
  signal?: AbortSignal;
  /** Default DefaultAzureCredential (for --namespace). */
  credential?: TokenCredential;
  progressEveryMs?: number;
}

/** Runs a validated capture: opens the client and the output, records, and prints the summary on stderr. */
export async function runCapture(request: CaptureRequest, io: CaptureCommandIo): Promise<CaptureResult> {
  const client = createConsumerClient(request, io.credential);
  // Lines go out with synchronous writes: whatever was received is on disk when Ctrl-C returns.
  const fd = request.out === undefined ? undefined : openSync(request.out, "w");
  const write = fd === undefined ? io.out : (text: string) => void writeSync(fd, text);
  try {
    const result = await captureEvents(client, {
      startPosition: request.startPosition,
      ...(request.count === undefined ? {} : { count: request.count }),
      ...(request.durationMs === undefined ? {} : { durationMs: request.durationMs }),
      ...(io.signal ? { signal: io.signal } : {}),
      ...(io.progressEveryMs === undefined ? {} : { progressEveryMs: io.progressEveryMs }),
      write,
      progress: (line) => io.err(`${line}\n`),
    });
    const why = { count: `${request.count} events`, duration: "the duration", interrupted: "interrupted" }[result.stoppedBy];
    io.err(`capture: done (${why}): ${result.total} events from ${client.eventHubName} in ${result.seconds.toFixed(1)} s${request.out ? ` to ${request.out}` : ""}\n`);
    return result;
  } finally {
    if (fd !== undefined) closeSync(fd);
    await closeWithin(client, CLOSE_WAIT_MS);
  }
}

/** How long a capture waits for the client to close; every line is already written by then. */
const CLOSE_WAIT_MS = 5000;

/**
 * Closes the client, waiting at most `ms`: an endpoint that never answers the AMQP close (seen with
 * the emulator's endpoint after a capture stopped mid-batch) must not keep the command from returning.
 */
async function closeWithin(client: EventHubConsumerClient, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([client.close().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
