/**
 * A PostgreSQL outage in the middle of a batch's transaction: the handler rejects (so the trigger's
 * retry policy re-delivers), the process lives, and once the server is back the retried batch leaves
 * exactly what an uninterrupted run of the same batch leaves. The server is the test's own
 * (test/support/privatePostgres), killed with `pg_ctl stop -m immediate`.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Client } from "pg";
import { startEventHubsEndpoint, type EventHubsEndpoint } from "../../local/emulator/startEventHubsEndpoint";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { complianceRoutes } from "../../shared/reports/complianceRoutes";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { closeRuntime } from "../../shared/runtime";
import type { Database, Queryable } from "../../shared/store/Database";
import { openStore } from "../../shared/store/openStore";
import { FixtureTwin, SEED_POLICY, seedTutorialStream } from "../fixtures/twinEvents";
import { InMemoryEventStream } from "../host/InMemoryEventStream";
import { postgresBinDir, privatePostgresMode, startPrivatePostgres, type PrivatePostgres } from "../support/privatePostgres";
import { openTestPostgres } from "../support/testDatabases";

const bin = postgresBinDir();
const mode = privatePostgresMode(bin);
if (mode === "skip") {
  console.warn("storeOutage: skipped — no PostgreSQL server binaries under /usr/lib/postgresql (install postgresql to run it; in CI it fails instead)");
}
const describeOutage = mode === "skip" ? describe.skip : describe;

const policy = parsePolicy(SEED_POLICY);
const clock = () => new Date("2026-01-01T00:05:00.000Z");

/** Two twins' rollouts and one line that is not JSON (a dead letter), as one trigger batch. */
async function outageBatch(): Promise<{ messages: unknown[]; triggerMetadata: Record<string, unknown> }> {
  const events: ReceivedEvent[] = [...seedTutorialStream("outage-a").events, ...seedTutorialStream("outage-b").events];
  const { messages, triggerMetadata } = await toTriggerInput(events);
  messages.push("not json");
  (triggerMetadata.propertiesArray as unknown[]).push({ deviceId: "outage-a", opType: "updateTwin" });
  (triggerMetadata.systemPropertiesArray as unknown[]).push({ "iothub-message-source": "twinChangeEvents" });
  return { messages, triggerMetadata };
}

/** Every row of the tables a batch writes, without generated ids and write timestamps. */
async function storedRows(db: Queryable): Promise<Record<string, unknown[]>> {
  const tables: [string, string][] = [
    ["twins", "device_id, module_id"],
    ["devices", "device_id, module_id"],
    ["property_records", "device_id, module_id, path"],
    ["property_history", "id"],
    ["dead_letters", "id"],
  ];
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of tables) {
    const { rows } = await db.query<{ row: unknown }>(
      `SELECT to_jsonb(t) - 'id' - 'updated_at' - 'received_at' AS row FROM ${table} t ORDER BY ${order}`,
    );
    out[table] = rows.map((r) => r.row);
  }
  return out;
}

/** `db` whose transactions kill the server right after their first statement. */
function killingAfterFirstStatement(db: Database, server: PrivatePostgres): Database {
  return {
    kind: db.kind,
    query: (sql, params) => db.query(sql, params),
    close: () => db.close(),
    transaction: (work) =>
      db.transaction((tx) => {
        let statements = 0;
        return work({
          async query(sql, params) {
            const result = await tx.query(sql, params);
            if (++statements === 1) await server.kill();
            return result as never;
          },
        });
      }),
  };
}

describeOutage("a PostgreSQL outage in the middle of a batch", () => {
  let server: PrivatePostgres;
  const unexpected: unknown[] = [];
  const onUnexpected = (error: unknown) => unexpected.push(error);

  beforeAll(async () => {
    if (!bin) throw new Error("CI=true but no PostgreSQL server binaries under /usr/lib/postgresql: install postgresql (.ci/run does)");
    server = await startPrivatePostgres(bin);
    process.on("uncaughtException", onUnexpected);
    process.on("unhandledRejection", onUnexpected);
  }, 120_000);
  afterAll(async () => {
    process.off("uncaughtException", onUnexpected);
    process.off("unhandledRejection", onUnexpected);
    await server?.dispose();
  });

  test("rejects the batch, keeps the process alive, and the retried batch equals an uninterrupted run", async () => {
    const reference = await openTestPostgres(server.url);
    const batch = await outageBatch();
    await reconcileTwinChanges(batch.messages, batch.triggerMetadata, { db: reference, policy, clock });
    const expected = await storedRows(reference);
    await reference.close();
    expect(expected.property_records).toHaveLength(8);
    expect(expected.dead_letters).toHaveLength(1);

    const db = await openTestPostgres(server.url);
    try {
      await expect(
        reconcileTwinChanges(batch.messages, batch.triggerMetadata, { db: killingAfterFirstStatement(db, server), policy, clock }),
      ).rejects.toThrow();
      // The queries outside a transaction fail as errors too, while the server is down.
      await expect(db.query("SELECT 1")).rejects.toThrow();
      await expect(db.transaction((tx) => tx.query("SELECT 1"))).rejects.toThrow();
      // The HTTP routes answer 503 problem+json meanwhile.
      const summary = await complianceRoutes.summary({ query: new URLSearchParams(), params: {} }, async () => db, () => undefined);
      expect([summary.status, summary.headers["content-type"]]).toEqual([503, "application/problem+json"]);
      expect(unexpected).toEqual([]);

      await server.start();
      await reconcileTwinChanges(batch.messages, batch.triggerMetadata, { db, policy, clock });
      expect(await storedRows(db)).toEqual(expected);
    } finally {
      await db.close();
    }
    expect(unexpected).toEqual([]);
  }, 120_000);

  describe("through the local functions host", () => {
    let host: LocalHost | undefined;
    let blocker: Client | undefined;
    let endpoint: EventHubsEndpoint | undefined;
    afterEach(async () => {
      await blocker?.end().catch(() => undefined);
      await host?.stop();
      await endpoint?.close();
      await closeRuntime();
    });

    test("retries a batch whose transaction lost the server until the server is back", async () => {
      const admin = new Client({ connectionString: server.url });
      admin.on("error", () => undefined);
      await admin.connect();
      await admin.query("DROP DATABASE IF EXISTS host_outage");
      await admin.query("CREATE DATABASE host_outage");
      await admin.end();
      const url = server.url.replace(/\/postgres$/, "/host_outage");
      // Migrated before the host starts, so the function's first run finds the schema in place.
      await (await openStore({ store: { kind: "postgres", connectionString: url } })).close();

      const stream = new InMemoryEventStream(1);
      endpoint = await startEventHubsEndpoint(stream, { eventHubName: "twin-changes", key: randomBytes(16).toString("base64") });
      host = await startLocalHost({
        modules: [path.join(__dirname, "..", "..", "functions", "reconcileTwinChanges.ts")],
        rootDir: path.join(__dirname, "..", "host", "fixtures"),
        // The checkpoints live in the same store, so they ride out the outage too.
        settings: { DATABASE_URL: url, POLICY_JSON: JSON.stringify(SEED_POLICY), TWIN_EVENTS_HUB_NAME: "twin-changes", TwinEvents: endpoint.connectionString },
        eventHubs: { maxWaitTimeInSeconds: 0.2 },
        port: 0,
        scheduleTimers: false,
        log: () => undefined,
      });
      const twin = new FixtureTwin("host-outage");
      const first = twin.replace();
      stream.append("0", first.body, first.properties, first.systemProperties);
      await host.drained();

      // Writes to twins wait behind this lock, so the function's transaction is open when the server dies.
      blocker = new Client({ connectionString: url });
      blocker.on("error", () => undefined);
      await blocker.connect();
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE twins IN SHARE MODE");
      const second = twin.tick(1000).setDesired({ fanOn: true });
      stream.append("0", second.body, second.properties, second.systemProperties);
      await waitUntil(async () => {
        const { rows } = await blocker!.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'host_outage'");
        return rows[0].n > 0;
      }, "the function's transaction to wait on the lock");
      await server.kill();
      await waitUntil(async () => host!.stats().eventHub.retries > 0, "a retry");
      await server.start();
      await host.drained();

      expect(host.stats().eventHub).toMatchObject({ failures: 0, lostEvents: 0 });
      const check = new Client({ connectionString: url });
      await check.connect();
      const { rows } = await check.query("SELECT path, desired FROM property_records WHERE device_id = 'host-outage'");
      await check.end();
      expect(rows).toEqual([{ path: "fanOn", desired: true }]);
      expect(unexpected).toEqual([]);
    }, 120_000);
  });
});

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
