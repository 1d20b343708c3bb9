/**
 * The thin retention function: its timer registration, and one real invocation with the local
 * settings (PGlite in memory) on hand-made old and recent rows.
 */
import { InvocationContext, type Timer } from "@azure/functions";
import { pruneRetentionHandler } from "../../functions/pruneRetention";
import { closeRuntime, getRuntime } from "../../shared/runtime";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as {
  __state: { functions: Map<string, { metadata: { bindings: Record<string, Record<string, unknown>> } }> };
};

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: "", next: "", lastUpdated: "" } };

const saved = { ...process.env };
afterEach(async () => {
  await closeRuntime();
  process.env = { ...saved };
});

it("registers a timer on the RETENTION_SCHEDULE setting", () => {
  const bindings = Object.values(core.__state.functions.get("pruneRetention")!.metadata.bindings);
  expect(bindings).toEqual([expect.objectContaining({ type: "timerTrigger", direction: "in", schedule: "%RETENTION_SCHEDULE%" })]);
});

it("prunes what is past HISTORY_RETENTION and DEAD_LETTER_RETENTION and logs what it did", async () => {
  process.env = { PGLITE_DATA_DIR: "memory", HISTORY_RETENTION: "2d", DEAD_LETTER_RETENTION: "1d" };
  const { db } = await getRuntime();
  for (const days of [3, 1]) {
    await db.query(
      "INSERT INTO property_history (device_id, module_id, path, to_state, cause, at) VALUES ('d1', '', 'interval', 'pending', 'event', now() - $1::float8 * interval '1 day')",
      [days],
    );
    await db.query("INSERT INTO dead_letters (received_at, reason, raw) VALUES (now() - $1::float8 * interval '1 day', 'test', jsonb_build_object('n', random()))", [days + 0.5]);
  }
  const lines: string[] = [];
  const context = new InvocationContext({ functionName: "pruneRetention", invocationId: "test", logHandler: (_level, ...args) => lines.push(args.map(String).join(" ")) });
  await pruneRetentionHandler(timer, context);
  expect(lines.join("\n")).toMatch(/^retention: 1 history rows, 2 dead letters, 0 time-to-compliance rows pruned; \d+ counter rows folded$/);
  expect((await db.query("SELECT count(*)::int AS n FROM property_history")).rows).toEqual([{ n: 1 }]);
  expect((await db.query("SELECT count(*)::int AS n FROM dead_letters")).rows).toEqual([{ n: 0 }]);
});
