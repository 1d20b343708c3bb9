/**
 * The Event Hubs checkpoint store on PGlite and PostgreSQL. Expected owners, etag outcomes and
 * checkpoints are written out by hand from the rules of Microsoft's BlobCheckpointStore (and where
 * this store deliberately differs, from the header of eventHubCheckpointStore.ts).
 */
import { EventHubConsumerClient, type CheckpointStore, type PartitionOwnership } from "@azure/event-hubs";
import type { Database } from "../../shared/store/Database";
import { EventHubCheckpointStore } from "../../shared/store/eventHubCheckpointStore";
import { testDatabases } from "../support/testDatabases";

const NS = "twins.servicebus.windows.net";
const HUB = "twin-changes";
const CG = "$Default";

function ownership(partitionId: string, ownerId: string, etag?: string): PartitionOwnership {
  return { fullyQualifiedNamespace: NS, eventHubName: HUB, consumerGroup: CG, partitionId, ownerId, ...(etag === undefined ? {} : { etag }) };
}

/** What a listing shows, without the generated etag and time. */
const owners = (list: PartitionOwnership[]) => list.map((o) => [o.partitionId, o.ownerId]);

describe.each(testDatabases)("EventHubCheckpointStore on $name", ({ open }) => {
  let db: Database;
  let store: EventHubCheckpointStore;
  beforeAll(async () => {
    db = await open();
    store = new EventHubCheckpointStore(db);
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await db.query("TRUNCATE event_hub_ownership, event_hub_checkpoints");
  });

  it("lists no ownership and no checkpoints for a hub nobody consumed", async () => {
    expect(await store.listOwnership(NS, HUB, CG)).toEqual([]);
    expect(await store.listCheckpoints(NS, HUB, CG)).toEqual([]);
  });

  it("claims a never-owned partition without an etag and returns it with a new etag and the time of the claim", async () => {
    const before = Date.now();
    const [claimed, ...rest] = await store.claimOwnership([ownership("0", "host-a")]);
    const after = Date.now();
    expect(rest).toEqual([]);
    expect(claimed).toMatchObject({ fullyQualifiedNamespace: NS, eventHubName: HUB, consumerGroup: CG, partitionId: "0", ownerId: "host-a" });
    expect(typeof claimed!.etag).toBe("string");
    expect(claimed!.etag!.length).toBeGreaterThan(0);
    // The database's clock, same machine: within a second of the test's.
    expect(claimed!.lastModifiedTimeInMs).toBeGreaterThanOrEqual(before - 1000);
    expect(claimed!.lastModifiedTimeInMs).toBeLessThanOrEqual(after + 1000);
    expect(await store.listOwnership(NS, HUB, CG)).toEqual([claimed]);
  });

  it("reclaims with the current etag, and then the old etag is stale", async () => {
    const [first] = await store.claimOwnership([ownership("0", "host-a")]);
    const [renewed] = await store.claimOwnership([ownership("0", "host-a", first!.etag)]);
    expect(renewed!.etag).not.toBe(first!.etag);
    expect(renewed!.lastModifiedTimeInMs).toBeGreaterThanOrEqual(first!.lastModifiedTimeInMs!);
    expect(await store.claimOwnership([ownership("0", "host-b", first!.etag)])).toEqual([]);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["0", "host-a"]]);
  });

  // [case, how host-b claims partition 0 owned by host-a, returned?, owner afterwards]
  const steals: [string, "current" | "stale" | "none" | "unknown", boolean, string][] = [
    ["steals with the current etag", "current", true, "host-b"],
    ["does not steal with a stale etag", "stale", false, "host-a"],
    ["does not steal without an etag when the partition has an owner", "none", false, "host-a"],
    ["does not steal with an etag the store never issued", "unknown", false, "host-a"],
  ];
  it.each(steals)("%s", async (_case, etagKind, returned, ownerAfter) => {
    const [first] = await store.claimOwnership([ownership("0", "host-a")]);
    const [current] = await store.claimOwnership([ownership("0", "host-a", first!.etag)]);
    const etag = { current: current!.etag, stale: first!.etag, none: undefined, unknown: "not-an-etag" }[etagKind];
    const result = await store.claimOwnership([ownership("0", "host-b", etag)]);
    expect(owners(result)).toEqual(returned ? [["0", "host-b"]] : []);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["0", ownerAfter]]);
  });

  it("does not create a partition's ownership from a claim carrying an etag", async () => {
    expect(await store.claimOwnership([ownership("3", "host-a", "made-up")])).toEqual([]);
    expect(await store.listOwnership(NS, HUB, CG)).toEqual([]);
  });

  it("returns only the won claims of a batch, in order, and leaves the lost ones untouched", async () => {
    const [p1] = await store.claimOwnership([ownership("1", "host-a")]);
    await store.claimOwnership([ownership("2", "host-a")]);
    const result = await store.claimOwnership([
      ownership("0", "host-b"), // never owned: won
      ownership("1", "host-b", p1!.etag), // current etag: won
      ownership("2", "host-b"), // owned, no etag: lost
      ownership("3", "host-b"), // never owned: won
    ]);
    expect(owners(result)).toEqual([["0", "host-b"], ["1", "host-b"], ["3", "host-b"]]);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([
      ["0", "host-b"],
      ["1", "host-b"],
      ["2", "host-a"],
      ["3", "host-b"],
    ]);
  });

  it("relinquishes with an empty owner id, and the partition can then be claimed with the new etag", async () => {
    const [claimed] = await store.claimOwnership([ownership("0", "host-a")]);
    const [released] = await store.claimOwnership([ownership("0", "", claimed!.etag)]);
    expect(released!.ownerId).toBe("");
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["0", ""]]);
    expect(owners(await store.claimOwnership([ownership("0", "host-b", released!.etag)]))).toEqual([["0", "host-b"]]);
  });

  it("lets exactly one of eight concurrent claims with the same etag win", async () => {
    const [claimed] = await store.claimOwnership([ownership("0", "host-a")]);
    const contenders = Array.from({ length: 8 }, (_, i) => `host-${i}`);
    // A store per contender over the same database: on PostgreSQL the statements run on different pooled connections.
    const results = await Promise.all(
      contenders.map((owner) => new EventHubCheckpointStore(db).claimOwnership([ownership("0", owner, claimed!.etag)])),
    );
    const winners = results.flat();
    expect(winners).toHaveLength(1);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["0", winners[0]!.ownerId]]);
  });

  it("lets exactly one of eight concurrent first claims of a never-owned partition win", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => new EventHubCheckpointStore(db).claimOwnership([ownership("0", `host-${i}`)])),
    );
    const winners = results.flat();
    expect(winners).toHaveLength(1);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["0", winners[0]!.ownerId]]);
  });

  // [scope listed, sees the ownership and checkpoint written under (NS, HUB, CG)?]
  const scopes: [string, string, string, boolean][] = [
    [NS, HUB, CG, true],
    ["TWINS.ServiceBus.Windows.NET", HUB, CG, true], // names are case-insensitive (lower-cased, as the blob store does)
    [NS, "Twin-Changes", CG, true],
    [NS, HUB, "$DEFAULT", true],
    ["other.servicebus.windows.net", HUB, CG, false],
    [NS, "other-hub", CG, false],
    [NS, HUB, "reporting", false],
    [NS, "twin-change", CG, false], // a prefix of the hub is another hub
  ];
  it.each(scopes)("scopes ownership and checkpoints: listing %s / %s / %s sees them: %s", async (ns, hub, cg, sees) => {
    await store.claimOwnership([ownership("0", "host-a")]);
    await store.updateCheckpoint({ fullyQualifiedNamespace: NS, eventHubName: HUB, consumerGroup: CG, partitionId: "0", offset: "42", sequenceNumber: 7 });
    const listed = await store.listOwnership(ns, hub, cg);
    const checkpoints = await store.listCheckpoints(ns, hub, cg);
    if (!sees) {
      expect(listed).toEqual([]);
      expect(checkpoints).toEqual([]);
      return;
    }
    // The names in the result are the ones asked with, as the blob store returns them.
    expect(listed.map((o) => [o.fullyQualifiedNamespace, o.eventHubName, o.consumerGroup, o.partitionId, o.ownerId])).toEqual([[ns, hub, cg, "0", "host-a"]]);
    expect(checkpoints).toEqual([{ fullyQualifiedNamespace: ns, eventHubName: hub, consumerGroup: cg, partitionId: "0", offset: "42", sequenceNumber: 7 }]);
  });

  it("treats a claim under another casing of the names as a claim of the same partition", async () => {
    await store.claimOwnership([ownership("0", "host-a")]);
    const shouted = { ...ownership("0", "host-b"), fullyQualifiedNamespace: NS.toUpperCase(), eventHubName: HUB.toUpperCase() };
    expect(await store.claimOwnership([shouted])).toEqual([]);
  });

  it("keeps partition ids as given (not lower-cased)", async () => {
    await store.claimOwnership([ownership("A", "host-a")]);
    expect(owners(await store.claimOwnership([ownership("a", "host-b")]))).toEqual([["a", "host-b"]]);
    expect(owners(await store.listOwnership(NS, HUB, CG))).toEqual([["A", "host-a"], ["a", "host-b"]]);
  });

  it("round-trips checkpoints per partition, the latest write winning, sequence numbers beyond 32 bits included", async () => {
    const cp = (partitionId: string, offset: string, sequenceNumber: number) => ({
      fullyQualifiedNamespace: NS,
      eventHubName: HUB,
      consumerGroup: CG,
      partitionId,
      offset,
      sequenceNumber,
    });
    await store.updateCheckpoint(cp("0", "100", 1));
    await store.updateCheckpoint(cp("1", "5000", 9));
    await store.updateCheckpoint(cp("0", "200", 2));
    await store.updateCheckpoint(cp("2", "8589934592", 4_294_967_297));
    expect(await store.listCheckpoints(NS, HUB, CG)).toEqual([cp("0", "200", 2), cp("1", "5000", 9), cp("2", "8589934592", 4_294_967_297)]);
  });

  // [missing field, message]
  const badCheckpoints: [string, RegExp][] = [
    ["offset", /updateCheckpoint called without required parameter "offset"/],
    ["sequenceNumber", /updateCheckpoint called without required parameter "sequenceNumber"/],
  ];
  it.each(badCheckpoints)("refuses a checkpoint without %s, naming it, and writes nothing", async (field, message) => {
    const checkpoint: Record<string, unknown> = { fullyQualifiedNamespace: NS, eventHubName: HUB, consumerGroup: CG, partitionId: "0", offset: "1", sequenceNumber: 1 };
    delete checkpoint[field];
    await expect(store.updateCheckpoint(checkpoint as never)).rejects.toThrow(message);
    expect(await store.listCheckpoints(NS, HUB, CG)).toEqual([]);
  });

  it("stops before touching the store when the abort signal has fired", async () => {
    const signal = AbortSignal.abort();
    await expect(store.claimOwnership([ownership("0", "host-a")], { abortSignal: signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(await store.listOwnership(NS, HUB, CG)).toEqual([]);
  });

  it("is accepted by EventHubConsumerClient as its checkpoint store", async () => {
    const asInterface: CheckpointStore = store;
    // Constructing does not connect; the key is a dummy for a host that does not exist.
    const client = new EventHubConsumerClient(CG, "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=twin-changes", asInterface);
    expect(client.eventHubName).toBe("twin-changes");
    await client.close();
  });
});
