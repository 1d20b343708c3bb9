import { decodeTwinChanges } from "../../shared/events/decodeTwinChanges";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import type { TwinChangeEvent } from "../../shared/twin/TwinChangeEvent";
import { applyTwinChange } from "../../shared/twin/applyTwinChange";
import type { Twin } from "../../shared/twin/Twin";
import { FixtureTwin } from "../fixtures/twinEvents";

async function decoded(event: ReceivedEvent): Promise<TwinChangeEvent> {
  const { messages, triggerMetadata } = await toTriggerInput([event]);
  return decodeTwinChanges(messages, triggerMetadata).events[0]!;
}

async function applyAll(events: ReceivedEvent[]): Promise<Twin | undefined> {
  let twin: Twin | undefined;
  for (const event of events) {
    const outcome = applyTwinChange(twin, await decoded(event));
    if (outcome.kind === "applied") twin = outcome.twin;
  }
  return twin;
}

describe("applyTwinChange", () => {
  test("a replace carrying both sections starts a twin with no gap", async () => {
    const fixture = new FixtureTwin("d1");
    const outcome = applyTwinChange(undefined, await decoded(fixture.replace()));
    expect(outcome).toMatchObject({ kind: "applied", gap: undefined, twin: { deviceId: "d1", version: 2 } });
  });

  test("a patch for a twin never seen is applied and marked unseen", async () => {
    const fixture = new FixtureTwin("d1");
    expect(applyTwinChange(undefined, await decoded(fixture.setDesired({ a: 1 })))).toMatchObject({ kind: "applied", gap: "unseen", twin: { desired: { a: 1 } } });
  });

  test("ignores an event whose version is not newer than the stored twin", async () => {
    const fixture = new FixtureTwin("d1");
    const first = fixture.replace();
    const second = fixture.setDesired({ a: 1 });
    const twin = (await applyAll([first, second]))!;
    expect(applyTwinChange(twin, await decoded(second))).toEqual({ kind: "duplicate" });
    expect(applyTwinChange(twin, await decoded(first))).toEqual({ kind: "duplicate" });
  });

  test("merges desired and reported patches, keeping each section's $version", async () => {
    const fixture = new FixtureTwin("d1");
    const twin = (await applyAll([fixture.replace(), fixture.setDesired({ climate: { min: 68, max: 76 } }), fixture.setDesired({ climate: { max: 77 } }), fixture.report({ min: 68 })]))!;
    expect(twin.desired).toMatchObject({ climate: { min: 68, max: 77 }, $version: 3 });
    expect(twin.reported).toMatchObject({ min: 68, $version: 2 });
    expect(twin.version).toBe(5);
  });

  test("flags a gap when a section's $version skips ahead", async () => {
    const fixture = new FixtureTwin("d1");
    const twin = (await applyAll([fixture.replace()]))!;
    fixture.setDesired({ lost: true });
    expect(applyTwinChange(twin, await decoded(fixture.setDesired({ b: 1 })))).toMatchObject({ kind: "applied", gap: "desiredVersionGap" });
    fixture.report({ lost: true });
    expect(applyTwinChange(twin, await decoded(fixture.report({ c: 1 })))).toMatchObject({ gap: "reportedVersionGap" });
  });

  test("a tags update changes tags only", async () => {
    const fixture = new FixtureTwin("d1");
    const twin = (await applyAll([fixture.replace(), fixture.setDesired({ a: 1 }), fixture.setTags({ building: "43" })]))!;
    expect(twin.tags).toEqual({ building: "43" });
    expect(twin.desired).toMatchObject({ a: 1 });
  });

  test("replaceTwin replaces the sections it carries", async () => {
    const fixture = new FixtureTwin("d1");
    const twin = (await applyAll([fixture.replace(), fixture.setDesired({ a: 1, b: 2 })]))!;
    const replaced = await decoded(fixture.replace());
    const outcome = applyTwinChange(twin, { ...replaced, desired: { c: 3, $version: 9 }, reported: undefined });
    expect(outcome).toMatchObject({ kind: "applied", twin: { desired: { c: 3, $version: 9 } } });
    if (outcome.kind === "applied") expect(outcome.twin.desired).not.toHaveProperty("a");
  });
});
