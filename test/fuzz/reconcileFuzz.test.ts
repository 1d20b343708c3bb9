/**
 * Fuzzing that reaches the core: valid Event Hub envelopes (twin-change source, trigger metadata as
 * the Functions host shapes it, ids IoT Hub could issue) around hostile bodies, ids and `$metadata`,
 * through the public `reconcileTwinChanges` on one in-memory PGlite store. Every generated event
 * carries the generator's own verdict — valid (twin key and version), dead (what was injected) or
 * ignored (another source) — and a small model of IoT Hub's dedupe rule (per twin, a version not
 * above the highest applied one is a duplicate) turns those into the counts each batch must report.
 * The decoder is never asked what it thinks.
 *
 * Generated keys stay short (record paths well under 2,000 bytes): PostgreSQL's btree limit on very
 * long record paths is the store's concern, tested there.
 *
 * A failure prints fast-check's seed and the shrunk batch; FUZZ_SEED=<n> replays it.
 */
import fc from "fast-check";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges, type ReconcileResult } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { openTestPglite, truncateAll } from "../support/testDatabases";

const T0 = Date.parse("2026-03-01T00:00:00Z");
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const policy = parsePolicy({
  staleAfter: "10m",
  rules: [
    { desired: "target", compare: "ack" },
    { desired: "telemetry", compare: "status" },
    { desired: "__proto__.x", reported: "protoX", compare: "looseEquals" },
    { desired: "cfg", compare: "equals" },
  ],
});

// ---------------------------------------------------------------------------------------------
// What the generator knows about each event.

type Verdict = { kind: "valid"; twin: string; version: number } | { kind: "dead"; injected: string } | { kind: "ignored" };

interface GeneratedEvent {
  event: ReceivedEvent;
  verdict: Verdict;
}

/** The test's own model of the outcome: dedupe per twin on version, in version order (stable), dead and ignored as injected. */
function expectedCounts(events: readonly GeneratedEvent[]): { applied: number; duplicates: number; ignored: number; deadLettered: number; versions: Map<string, number> } {
  const counts = { applied: 0, duplicates: 0, ignored: 0, deadLettered: 0, versions: new Map<string, number>() };
  const perTwin = new Map<string, number[]>();
  for (const { verdict } of events) {
    if (verdict.kind === "ignored") counts.ignored++;
    else if (verdict.kind === "dead") counts.deadLettered++;
    else perTwin.set(verdict.twin, [...(perTwin.get(verdict.twin) ?? []), verdict.version]);
  }
  for (const [twin, versions] of perTwin) {
    let highest = 0;
    for (const version of [...versions].sort((a, b) => a - b)) {
      if (version > highest) {
        counts.applied++;
        highest = version;
      } else counts.duplicates++;
    }
    counts.versions.set(twin, highest);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Hostile but valid content. Bodies are built as JSON text, so `__proto__` is a key, never a prototype.

/** Any well-formed text without NUL: emoji, RTL marks, quotes, backslashes, SQL. */
const text = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.constantFrom("'; DROP TABLE twins; --", '"', "\\", "\\u0000", "😀", "ключ", "\u202e", "\uFEFF", "%s%n", "0001-01-01T00:00:00Z"),
  )
  .map((s) => s.replaceAll("\u0000", "0").toWellFormed());
const key = fc
  .oneof(fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__t", "target", "telemetry", "cfg", "x", "a.b"), text)
  .map((k) => k.replace(/^\$+/, "_").slice(0, 24));
const leaf = fc.oneof(
  fc.integer({ min: -4503599627370496, max: 4503599627370495 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  text,
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), text), { maxLength: 3 }),
  fc.record({ value: fc.integer(), ac: fc.constantFrom(200, 202, 400, 500), av: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ status: fc.constantFrom("success", "failed", "pending", "SUCCESS"), mode: text }),
);

type Tree = Array<[string, unknown]>;
const { tree } = fc.letrec<{ tree: Tree; node: unknown }>((tie) => ({
  tree: fc.uniqueArray(fc.tuple(key, tie("node")), { selector: ([k]) => k, maxLength: 4 }),
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("tree").map((entries) => ({ $tree: entries }))),
}));

function treeJson(entries: Tree): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${nodeJson(v)}`).join(",")}}`;
}
function nodeJson(node: unknown): string {
  return typeof node === "object" && node !== null && "$tree" in node ? treeJson((node as { $tree: Tree }).$tree) : JSON.stringify(node);
}

/** IoT Hub-shaped `$metadata` for a patch: `$lastUpdated` (and desired `$lastUpdatedVersion`) at every level. */
function metadataJson(entries: Tree, stamp: string, version: number | undefined, inject: string | undefined): string {
  const level = (node: Tree, root: boolean): string => {
    const own = [`"$lastUpdated":${root && inject?.startsWith('"$lastUpdated"') ? inject.slice(15) : JSON.stringify(stamp)}`];
    if (version !== undefined) own.push(`"$lastUpdatedVersion":${root && inject?.startsWith('"$lastUpdatedVersion"') ? inject.slice(22) : version}`);
    for (const [k, v] of node) {
      if (v === null) continue;
      const child = typeof v === "object" && "$tree" in v ? (v as { $tree: Tree }).$tree : [];
      own.push(`${JSON.stringify(k)}:${level(child, false)}`);
    }
    return `{${own.join(",")}}`;
  };
  return level(entries, true);
}

const validStamp = fc.oneof(
  fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom("0001-01-01T00:00:00Z", "2026-02-28T23:59:59.2612586Z", "9999-12-31T23:59:59.9999999Z"),
);
const sectionVersion = fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.constant(Number.MAX_SAFE_INTEGER));

/** One injected defect and what the body or envelope must look like for it; `undefined`: the event is valid. */
const bodyDefect = fc.constantFrom(
  ["NUL in a value", '"nul":"a\\u0000b"'],
  ["NUL in a key", '"a\\u0000b":1'],
  ["lone surrogate in a value", '"s":"x\\ud800"'],
  ["lone surrogate in a key", '"\\udc00k":1'],
  ["$version 2.5", "$version:2.5"],
  ["$version -3", "$version:-3"],
  ["$version 1e20", "$version:1e20"],
  ["$lastUpdatedVersion 1.5", '$meta:"$lastUpdatedVersion":1.5'],
  ["$lastUpdatedVersion 1e20", '$meta:"$lastUpdatedVersion":1e20'],
  ["$lastUpdatedVersion -1", '$meta:"$lastUpdatedVersion":-1'],
  ['$lastUpdatedVersion "3"', '$meta:"$lastUpdatedVersion":"3"'],
  ["$lastUpdated year -1", '$meta:"$lastUpdated":"-000001-01-01T00:00:00Z"'],
  ["$lastUpdated year +200000", '$meta:"$lastUpdated":"+200000-01-01T00:00:00Z"'],
  ["$lastUpdated +275760-09-13", '$meta:"$lastUpdated":"+275760-09-13T00:00:00Z"'],
  ["$lastUpdated year 10000", '$meta:"$lastUpdated":"+010000-01-01T00:00:00Z"'],
  ["$lastUpdated year 0", '$meta:"$lastUpdated":"0000-06-01T00:00:00Z"'],
  ["$lastUpdated not a date", '$meta:"$lastUpdated":"whenever"'],
  ["$lastUpdated a number", '$meta:"$lastUpdated":1767225600000'],
  ["twin version 1e20", "version:1e20"],
  ["twin version -1", "version:-1"],
  ["twin version 1.5", "version:1.5"],
  ['twin version "7"', 'version:"7"'],
  ["too deep", "deep"],
  ["not JSON", "text:{"],
  ["an array body", "text:[1,2]"],
  ["a string body", 'text:"twin"'],
);
const idDefect = fc.constantFrom(
  ["10 KB iothub-connection-device-id", "system", "10 KB"],
  ["10 KB deviceId", "app", "10 KB"],
  ["129-character deviceId", "app", "129 characters"],
  ["NUL in deviceId", "app", "dev\u0000ice"],
  ["lone surrogate in deviceId", "app", "dev\uD800ice"],
  ["lone surrogate in iothub-connection-device-id", "system", "dev\uDFFFice"],
  ["space in deviceId", "app", "dev ice"],
  ["empty deviceId", "app", ""],
  ["numeric deviceId", "app", 42],
  ["NUL in moduleId", "module", "mod\u0000"],
  ["lone surrogate in moduleId", "module", "\uD83D"],
  ["slash in moduleId", "module", "a/b"],
);

const deviceIds = ["d0", "d-1", "dev:2", "a.b+c%d_e#f*g?h!i(j)k,l=m@n;o$p'q", "D".repeat(128)];
const moduleIds = [null, null, "m0", "mod'1"];

interface EventSpec {
  device: number;
  module: number;
  version: number;
  opType: "updateTwin" | "replaceTwin";
  desired: Tree | undefined;
  reported: Tree | undefined;
  tags: Tree | undefined;
  stamp: string;
  desiredVersion: number;
  reportedVersion: number;
  transport: "object" | "string" | "buffer" | "bom string" | "bom buffer";
  deviceIdFrom: "app" | "system";
  defect: { body: readonly string[] | undefined; id: readonly unknown[] | undefined; opType: boolean; source: string | undefined };
  sequenceNumber: number;
}

const eventSpec: fc.Arbitrary<EventSpec> = fc.record({
  device: fc.nat({ max: deviceIds.length - 1 }),
  module: fc.nat({ max: moduleIds.length - 1 }),
  version: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.constant(Number.MAX_SAFE_INTEGER) }),
  opType: fc.constantFrom("updateTwin", "replaceTwin"),
  desired: fc.option(tree, { nil: undefined }),
  reported: fc.option(tree, { nil: undefined }),
  tags: fc.option(tree, { nil: undefined, freq: 3 }),
  stamp: validStamp,
  desiredVersion: sectionVersion,
  reportedVersion: sectionVersion,
  transport: fc.constantFrom("object", "string", "buffer", "bom string", "bom buffer"),
  deviceIdFrom: fc.constantFrom("app", "system"),
  defect: fc.oneof(
    { weight: 6, arbitrary: fc.constant({ body: undefined, id: undefined, opType: false, source: undefined }) },
    { weight: 2, arbitrary: bodyDefect.map((body) => ({ body, id: undefined, opType: false, source: undefined })) },
    { weight: 1, arbitrary: idDefect.map((id) => ({ body: undefined, id, opType: false, source: undefined })) },
    { weight: 1, arbitrary: fc.constant({ body: undefined, id: undefined, opType: true, source: undefined }) },
    { weight: 1, arbitrary: fc.constantFrom("Telemetry", "deviceConnectionStateEvents", "digitalTwinChangeEvents").map((source) => ({ body: undefined, id: undefined, opType: false, source })) },
  ),
  sequenceNumber: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
});

function section(entries: Tree | undefined, version: number, stamp: string, withVersions: boolean, defect: string | undefined): string | undefined {
  if (entries === undefined) return undefined;
  const metaInject = defect?.startsWith("$meta:") ? defect.slice(6) : undefined;
  const versionText = defect?.startsWith("$version:") ? defect.slice(9) : String(version);
  // Last, so that a generated key of the same name cannot override the defect (JSON.parse keeps the last).
  const extra = defect && !defect.startsWith("$") && !defect.startsWith("version:") && !defect.startsWith("text:") && defect !== "deep" ? defect : "";
  const patch = [treeJson(entries).slice(1, -1), extra].filter(Boolean).join(",");
  return `{${patch}${patch ? "," : ""}"$metadata":${metadataJson(entries, stamp, withVersions ? version : undefined, metaInject)},"$version":${versionText}}`;
}

/** Builds the event exactly as IoT Hub routes it, then applies the one defect the spec carries. */
function build(spec: EventSpec, index: number): GeneratedEvent {
  const bodyDefectCode = spec.defect.body?.[1];
  const deviceId = deviceIds[spec.device] as string;
  const moduleId = moduleIds[spec.module] ?? undefined;
  // A body defect lands in the desired section (the one with every kind of bookkeeping): make sure there is one.
  const desiredTree = spec.desired ?? (bodyDefectCode ? [] : undefined);
  const desired = section(desiredTree, spec.desiredVersion, spec.stamp, true, bodyDefectCode);
  const reported = section(spec.reported, spec.reportedVersion, spec.stamp, false, undefined);
  const props = [desired && `"desired":${desired}`, reported && `"reported":${reported}`].filter(Boolean).join(",");
  const versionText = bodyDefectCode?.startsWith("version:") ? bodyDefectCode.slice(8) : String(spec.version);
  let bodyText = `{"version":${versionText}${spec.opType === "replaceTwin" ? `,"deviceId":${JSON.stringify(deviceId)},"etag":"AAAAAAAAAAE="` : ""}${spec.tags ? `,"tags":${treeJson(spec.tags)}` : ""},"properties":{${props}}}`;
  if (bodyDefectCode === "deep") bodyText = `{"version":${spec.version},"properties":{"desired":${'{"n":'.repeat(40)}1${"}".repeat(40)}}}`;
  if (bodyDefectCode?.startsWith("text:")) bodyText = bodyDefectCode.slice(5);

  let body: unknown;
  if (bodyDefectCode?.startsWith("text:") && bodyText === "{") body = spec.transport.includes("buffer") ? Buffer.from(bodyText) : bodyText;
  else if (spec.transport === "object") body = JSON.parse(bodyText);
  else if (spec.transport === "string") body = bodyText;
  else if (spec.transport === "buffer") body = Buffer.from(bodyText);
  else if (spec.transport === "bom string") body = `\uFEFF${bodyText}`;
  else body = Buffer.from(`\uFEFF${bodyText}`);

  const at = new Date(T0 + index * 1_000).toISOString();
  const properties: Record<string, unknown> = { hubName: "contoso-hub", deviceId, ...(moduleId ? { moduleId } : {}), operationTimestamp: at, "iothub-message-schema": "twinChangeNotification", opType: spec.opType };
  const systemProperties: Record<string, unknown> = {
    "iothub-connection-device-id": deviceId,
    ...(moduleId ? { "iothub-connection-module-id": moduleId } : {}),
    "iothub-enqueuedtime": T0 + index * 1_000,
    "iothub-message-source": spec.defect.source ?? "twinChangeEvents",
    "content-type": "application/json",
    "content-encoding": "utf-8",
    "user-id": "contoso-hub",
  };
  if (spec.deviceIdFrom === "system") delete properties.deviceId;
  if (spec.defect.opType) properties.opType = "mergeTwin";
  const id = spec.defect.id;
  if (id) {
    const [, where, spec] = id;
    // Long ids are spelled out only here, so that a failing case prints short.
    const value = spec === "10 KB" ? "d".repeat(10_240) : spec === "129 characters" ? "d".repeat(129) : spec;
    if (where === "app") properties.deviceId = value;
    if (where === "system") {
      delete properties.deviceId;
      systemProperties["iothub-connection-device-id"] = value;
    }
    if (where === "module") properties.moduleId = value;
  }

  let verdict: Verdict;
  if (spec.defect.source) verdict = { kind: "ignored" };
  else if (spec.defect.opType) verdict = { kind: "dead", injected: "opType mergeTwin" };
  else if (id) verdict = { kind: "dead", injected: id[0] as string };
  else if (spec.defect.body) verdict = { kind: "dead", injected: spec.defect.body[0] as string };
  else verdict = { kind: "valid", twin: `${deviceId}/${moduleId ?? ""}`, version: spec.version };
  return { event: { body, properties, systemProperties, enqueuedTimeUtc: at, sequenceNumber: spec.sequenceNumber, offset: String(index), partitionId: "3" }, verdict };
}

// ---------------------------------------------------------------------------------------------

describe("reconcileTwinChanges under fuzzing (PGlite)", () => {
  let db: Database;
  const totals = { events: 0, applied: 0, duplicates: 0, ignored: 0, deadLettered: 0 };
  beforeAll(async () => {
    db = await openTestPglite();
  });
  afterAll(async () => {
    await db.close();
  });

  async function reconcile(events: ReceivedEvent[]): Promise<ReconcileResult> {
    await truncateAll(db);
    const { messages, triggerMetadata } = await toTriggerInput(events);
    return reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date(T0) });
  }

  test("every event of every batch is applied, a duplicate, ignored or dead-lettered exactly as injected, and the batch commits", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventSpec, { minLength: 56, maxLength: 70 }), async (specs) => {
        const generated = specs.map(build);
        // Event Hubs numbers a partition's events uniquely (dead letters are keyed by partition and
        // sequence number): consecutive numbers from a generated base, near the top of the range too.
        const base = Math.min((specs[0] as EventSpec).sequenceNumber, Number.MAX_SAFE_INTEGER - specs.length);
        generated.forEach((g, i) => (g.event.sequenceNumber = base + i));
        const expected = expectedCounts(generated);
        const result = await reconcile(generated.map((g) => g.event));
        totals.events += generated.length;
        for (const k of ["applied", "duplicates", "ignored", "deadLettered"] as const) totals[k] += expected[k];

        const dead = generated.flatMap((g, index) => (g.verdict.kind === "dead" ? [[index, g.verdict.injected]] : []));
        expect({ index: result.deadLetters.map((d) => d.index), injected: result.deadLetters.map((d) => dead.find(([i]) => i === d.index)?.[1] ?? "(valid)") }).toEqual({
          index: dead.map(([i]) => i),
          injected: dead.map(([, why]) => why),
        });
        expect({ applied: result.applied, duplicates: result.duplicates, ignored: result.ignored, deadLettered: result.deadLettered }).toEqual({
          applied: expected.applied,
          duplicates: expected.duplicates,
          ignored: expected.ignored,
          deadLettered: expected.deadLettered,
        });

        // Committed: the twins hold exactly the model's versions, the dead letters are all there.
        const twins = await db.query<{ device_id: string; module_id: string; version: unknown }>("SELECT device_id, module_id, version FROM twins");
        expect(new Map(twins.rows.map((r) => [`${r.device_id}/${r.module_id}`, Number(r.version)]))).toEqual(expected.versions);
        const letters = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM dead_letters");
        expect(Number(letters.rows[0]?.n)).toBe(expected.deadLettered);
      }),
      { numRuns: 90, seed },
    );
    // The run reached the core: thousands of events, every outcome well represented.
    console.log(`reconcile fuzz: ${JSON.stringify(totals)}`);
    expect(totals.events).toBeGreaterThanOrEqual(5_000);
    expect(totals.applied).toBeGreaterThan(1_000);
    expect(totals.duplicates).toBeGreaterThan(200);
    expect(totals.deadLettered).toBeGreaterThan(1_000);
    expect(totals.ignored).toBeGreaterThan(200);
  });

  test("reconciles a desired __proto__ property, the key the fuzz keeps generating, into a stored record", async () => {
    await truncateAll(db);
    const at = new Date(T0).toISOString();
    const envelope = (version: number, body: string): ReceivedEvent => ({
      body,
      properties: { hubName: "contoso-hub", deviceId: "d0", operationTimestamp: at, "iothub-message-schema": "twinChangeNotification", opType: "updateTwin" },
      systemProperties: { "iothub-connection-device-id": "d0", "iothub-enqueuedtime": T0, "iothub-message-source": "twinChangeEvents" },
      enqueuedTimeUtc: at,
      sequenceNumber: version,
      offset: String(version),
      partitionId: "0",
    });
    const { messages, triggerMetadata } = await toTriggerInput([
      envelope(2, `{"version":2,"properties":{"desired":{"__proto__":{"x":"5"},"$metadata":{"$lastUpdated":"${at}","$lastUpdatedVersion":2},"$version":2}}}`),
      envelope(3, `{"version":3,"properties":{"reported":{"protoX":5,"$version":2}}}`),
    ]);
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date(T0) });
    expect(result).toMatchObject({ applied: 2, deadLettered: 0 });
    const records = await db.query<{ path: string; state: string; desired: unknown; reported: unknown }>("SELECT path, state, desired, reported FROM property_records");
    expect(records.rows).toEqual([{ path: "__proto__.x", state: "compliant", desired: "5", reported: 5 }]);
    const twins = await db.query<{ desired: unknown }>("SELECT desired::text AS desired FROM twins");
    expect(JSON.parse(twins.rows[0]?.desired as string)).toHaveProperty(["__proto__", "x"], "5");
  });

  /** Anything at all, except a value that happens to carry an iothub-message-source key (the generator must know who put one). */
  const anything = fc
    .anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true })
    .filter((value) => !JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))?.includes("iothub-message-source"));
  const source = fc.oneof(
    fc.constantFrom("twinChangeEvents", "TwinChangeEvents", "Telemetry", "deviceConnectionStateEvents"),
    fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !["twinchangeevents", "devicelifecycleevents"].includes(s.toLowerCase())),
  );
  const systemEntry = fc.oneof(
    { weight: 3, arbitrary: source.map((s) => ({ put: s, value: { "iothub-message-source": s, "iothub-enqueuedtime": T0, "iothub-connection-device-id": "d0" } as unknown })) },
    { weight: 1, arbitrary: anything.map((value) => ({ put: undefined, value })) },
    { weight: 1, arbitrary: fc.record({ "iothub-message-source": fc.oneof(fc.constant(""), fc.integer(), fc.constant(null)) }).map((value) => ({ put: undefined, value: value as unknown })) },
  );
  const fieldOr = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid.map((v) => v as unknown) }, { weight: 1, arbitrary: anything });

  test("an event that cannot be attributed is a dead letter, and only an event naming another source is ignored, whatever the trigger metadata holds", async () => {
    const body = new Array(6).fill(0).map((_, i) => ({ version: i + 1, properties: { desired: { a: i, $version: i + 1 } } }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(systemEntry, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fieldOr(fc.constant(body.map(() => ({ deviceId: "d0", opType: "updateTwin" })))),
        fieldOr(fc.constant(body.map((_, i) => new Date(T0 + i).toISOString()))),
        fieldOr(fc.constant(body.map((_, i) => i))),
        fieldOr(fc.record({ partitionId: fc.oneof(fc.constant("0"), anything) })),
        async (entries, systemArrayUsable, propertiesArray, enqueuedTimeUtcArray, sequenceNumberArray, partitionContext) => {
          const messages = entries.map((_, i) => body[i]);
          const triggerMetadata = {
            propertiesArray,
            systemPropertiesArray: systemArrayUsable ? entries.map((e) => e.value) : undefined,
            enqueuedTimeUtcArray,
            sequenceNumberArray,
            partitionContext,
          };
          await truncateAll(db);
          const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date(T0) });

          const foreign = (put: string | undefined): boolean => put !== undefined && !["twinchangeevents", "devicelifecycleevents"].includes(put.toLowerCase());
          const attributable = entries.map((e) => systemArrayUsable && e.put !== undefined);
          expect(result.ignored).toBe(systemArrayUsable ? entries.filter((e) => foreign(e.put)).length : 0);
          const unattributed = attributable.flatMap((ok, index) => (ok ? [] : [index]));
          const letters = new Map(result.deadLetters.map((d) => [d.index, d.reason]));
          for (const index of unattributed) expect([index, letters.get(index)]).toEqual([index, expect.stringMatching(/cannot attribute the event/)]);
          expect(result.applied + result.duplicates + result.ignored + result.deadLettered).toBe(entries.length);
        },
      ),
      { numRuns: 200, seed },
    );
  });
});
