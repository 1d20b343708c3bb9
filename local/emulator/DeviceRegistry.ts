import type { JsonObject } from "../../shared/twin/json";
import { hubTimestamp, type Clock } from "./Clock";
import { checkTwinLimits } from "./checkTwinLimits";
import { hubErrors } from "./IotHubError";
import {
  bumpSectionVersion,
  emptySection,
  mergeIntoSection,
  metadataForPatch,
  replaceSection,
  sectionToJson,
  setOwn,
  type TwinSection,
} from "./TwinSection";

/** A device (`moduleId` null) or one of its modules. */
export interface TwinAddress {
  deviceId: string;
  moduleId: string | null;
}

/** A device or module id as callers pass it: a device id, or `{deviceId, moduleId}`. */
export type TwinId = string | { deviceId: string; moduleId?: string | null };

export function toAddress(id: TwinId): TwinAddress {
  return typeof id === "string" ? { deviceId: id, moduleId: null } : { deviceId: id.deviceId, moduleId: id.moduleId ?? null };
}

export type DeviceStatus = "enabled" | "disabled";
export type ConnectionState = "Connected" | "Disconnected";

/** A device or module identity as GET /devices/{id} returns it. */
export interface DeviceIdentity {
  deviceId: string;
  moduleId?: string;
  generationId: string;
  etag: string;
  status: DeviceStatus;
  statusReason: string | null;
  statusUpdatedTime: string;
  connectionState: ConnectionState;
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authentication: {
    type: "sas";
    symmetricKey: { primaryKey: string; secondaryKey: string };
    x509Thumbprint: { primaryThumbprint: null; secondaryThumbprint: null };
  };
  capabilities?: { iotEdge: boolean };
}

export interface CreateDeviceOptions {
  status?: DeviceStatus;
  statusReason?: string | null;
  /** Base64 keys; generated when absent or empty (as IoT Hub does). */
  primaryKey?: string;
  secondaryKey?: string;
}

/** A twin patch from the back end: tags and/or desired properties. */
export interface TwinPatch {
  tags?: JsonObject;
  properties?: { desired?: JsonObject; reported?: JsonObject };
}

/** One twin change as IoT Hub would route it (body shape per iothub-facts §1). */
export interface TwinChange {
  deviceId: string;
  moduleId: string | null;
  /** The identity's `generationId`: a device deleted and created again under its id is a new twin. */
  generationId: string;
  opType: "updateTwin" | "replaceTwin";
  timestampMs: number;
  body: JsonObject;
}

/**
 * A device or module created or deleted, as IoT Hub routes `DeviceLifecycleEvents` (Microsoft's
 * non-telemetry event schema): modules use the same two opTypes as devices. The body is the twin
 * (`deviceId`, `moduleId`, `etag`, `version`, `tags`, `properties` with `$metadata`/`$version`);
 * on delete, the twin as it was.
 */
export interface LifecycleChange {
  deviceId: string;
  moduleId: string | null;
  generationId: string;
  opType: "createDeviceIdentity" | "deleteDeviceIdentity";
  timestampMs: number;
  body: JsonObject;
}

export interface DeviceRegistryOptions {
  clock: Clock;
  /** Returns a new base64 symmetric key. */
  generateKey: () => string;
  /** Called after every twin change, in order. */
  onTwinChange?: (change: TwinChange) => void;
  /** Called after every create and delete of a device or module, in order with the twin changes. */
  onLifecycle?: (change: LifecycleChange) => void;
  /** Called after every desired change with what IoT Hub pushes to the device: the patch plus `$version`. */
  onDesiredChange?: (address: TwinAddress, notification: JsonObject) => void;
}

interface TwinRecord {
  identity: DeviceIdentity;
  version: number;
  tags: JsonObject;
  desired: TwinSection;
  reported: TwinSection;
  etagCounter: number;
}

// IoT Hub device ids: up to 128 of 7-bit alphanumerics and - : . + % _ # * ? ! ( ) , = @ ; $ '
const validId = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;

/**
 * The emulated hub's identity registry and twins, in memory. Pure: time comes from the injected
 * clock, keys from the injected generator; no I/O. Changes are reported through the callbacks.
 */
export class DeviceRegistry {
  private readonly records = new Map<string, TwinRecord>();
  private generation = 0;

  constructor(private readonly options: DeviceRegistryOptions) {}

  createDevice(deviceId: string, options: CreateDeviceOptions = {}): DeviceIdentity {
    return this.create({ deviceId, moduleId: null }, options);
  }

  createModule(deviceId: string, moduleId: string, options: CreateDeviceOptions = {}): DeviceIdentity {
    this.record({ deviceId, moduleId: null });
    return this.create({ deviceId, moduleId }, options);
  }

  getDevice(id: TwinId): DeviceIdentity {
    return structuredClone(this.record(toAddress(id)).identity);
  }

  /** Devices (not modules), ordered by id. */
  listDevices(): DeviceIdentity[] {
    return this.sortedRecords()
      .filter((r) => r.identity.moduleId === undefined)
      .map((r) => structuredClone(r.identity));
  }

  listModules(deviceId: string): DeviceIdentity[] {
    this.record({ deviceId, moduleId: null });
    return this.sortedRecords()
      .filter((r) => r.identity.deviceId === deviceId && r.identity.moduleId !== undefined)
      .map((r) => structuredClone(r.identity));
  }

  /** Changes status and/or keys (PUT /devices/{id} on an existing device). */
  updateDevice(id: TwinId, changes: CreateDeviceOptions, etag?: string): DeviceIdentity {
    const record = this.record(toAddress(id));
    checkEtag(record.identity.etag, etag);
    const now = hubTimestamp(this.options.clock.now());
    const identity = record.identity;
    if (changes.status !== undefined && changes.status !== identity.status) {
      identity.status = changes.status;
      identity.statusUpdatedTime = now;
    }
    if (changes.statusReason !== undefined) identity.statusReason = changes.statusReason;
    if (changes.primaryKey) identity.authentication.symmetricKey.primaryKey = changes.primaryKey;
    if (changes.secondaryKey) identity.authentication.symmetricKey.secondaryKey = changes.secondaryKey;
    identity.etag = opaqueEtag(++this.generation);
    return structuredClone(identity);
  }

  /**
   * Deletes a device (with its modules) or a module. Deleting a device emits only the device's
   * `deleteDeviceIdentity`, none for the modules that go with it: IoT Hub's documentation names no
   * module events for that case, and a consumer that removes a device removes its modules too.
   * (A design choice; shared/twin/TwinChangeEvent.ts `LifecycleEvent` says the same.)
   */
  deleteDevice(id: TwinId, etag?: string): void {
    const address = toAddress(id);
    const record = this.record(address);
    checkEtag(record.identity.etag, etag);
    const body = lifecycleBody(record);
    this.records.delete(recordKey(address));
    if (address.moduleId === null) {
      for (const [key, r] of this.records) if (r.identity.deviceId === address.deviceId) this.records.delete(key);
    }
    this.emitLifecycle(record, "deleteDeviceIdentity", body);
  }

  hasDevice(id: TwinId): boolean {
    return this.records.has(recordKey(toAddress(id)));
  }

  getTwin(id: TwinId): JsonObject {
    return twinDocument(this.record(toAddress(id)));
  }

  /** Every twin document (devices, or modules), ordered by device id then module id: what queries run over. */
  twinDocuments(source: "devices" | "modules"): JsonObject[] {
    return this.sortedRecords()
      .filter((r) => (source === "devices") === (r.identity.moduleId === undefined))
      .map(twinDocument);
  }

  /** Merge-patches tags and/or desired properties (PATCH /twins/{id}); `etag` undefined or `*` forces. */
  updateTwin(id: TwinId, patch: TwinPatch, etag?: string): JsonObject {
    const address = toAddress(id);
    const record = this.record(address);
    checkEtag(twinEtag(record), etag);
    if (patch.properties?.reported !== undefined) {
      throw hubErrors.argumentInvalid("Reported properties are read-only for the service: only the device can update them");
    }
    const desiredPatch = patch.properties?.desired;
    const tagsPatch = patch.tags;
    const nowMs = this.options.clock.now();
    const now = hubTimestamp(nowMs);
    // IoT Hub bumps the desired `$version` on a tags update too, even when no desired property
    // changes (iothub-facts §1 "Tags update": 3 → 4; MicrosoftDocs/azure-docs#36255). One PATCH
    // carrying both bumps it once.
    const desired =
      desiredPatch !== undefined ? mergeIntoSection(record.desired, desiredPatch, now, true) : tagsPatch !== undefined ? bumpSectionVersion(record.desired) : record.desired;
    const tags = tagsPatch === undefined ? record.tags : mergeIntoSection(sectionOfTags(record.tags), tagsPatch, now, false).values;
    if (desiredPatch !== undefined) checkTwinLimits("desired", desiredPatch, desired.values);
    if (tagsPatch !== undefined) checkTwinLimits("tags", tagsPatch, tags);
    if (desiredPatch === undefined && tagsPatch === undefined) return twinDocument(record);

    this.bump(record);
    record.desired = desired;
    record.tags = tags;
    const body: JsonObject = { version: record.version };
    if (tagsPatch !== undefined) body.tags = structuredClone(tagsPatch);
    if (desiredPatch !== undefined) {
      body.properties = { desired: sectionPatchJson(desired, desiredPatch) };
    } else {
      // The routed body of a tags update carries the desired section with its new `$version` (XMI's
      // capture shows the section); only `$version` here, since no desired value or metadata changed.
      body.properties = { desired: { $version: desired.version } };
    }
    this.options.onTwinChange?.({ ...address, generationId: record.identity.generationId, opType: "updateTwin", timestampMs: nowMs, body });
    if (desiredPatch !== undefined) {
      this.options.onDesiredChange?.(address, { ...structuredClone(desiredPatch), $version: desired.version });
    }
    return twinDocument(record);
  }

  /** Replaces tags and desired properties wholesale (PUT /twins/{id}); sections not given become empty. */
  replaceTwin(id: TwinId, replacement: TwinPatch, etag?: string): JsonObject {
    const address = toAddress(id);
    const record = this.record(address);
    checkEtag(twinEtag(record), etag);
    const nowMs = this.options.clock.now();
    const now = hubTimestamp(nowMs);
    // A replacement is often a twin read earlier: its read-only `$metadata`/`$version` are ignored.
    const { $metadata: _metadata, $version: _version, ...newDesired } = replacement.properties?.desired ?? {};
    const newTags = replacement.tags ?? {};
    const desired = replaceSection(record.desired, newDesired, now, true);
    const tags = replaceSection(sectionOfTags({}), newTags, now, false).values;
    checkTwinLimits("desired", newDesired, desired.values);
    checkTwinLimits("tags", newTags, tags);

    this.bump(record);
    record.desired = desired;
    record.tags = tags;
    const body: JsonObject = { deviceId: address.deviceId };
    if (address.moduleId !== null) body.moduleId = address.moduleId;
    body.etag = twinEtag(record);
    body.version = record.version;
    body.tags = structuredClone(tags);
    body.properties = { desired: sectionToJson(record.desired), reported: sectionToJson(record.reported) };
    this.options.onTwinChange?.({ ...address, generationId: record.identity.generationId, opType: "replaceTwin", timestampMs: nowMs, body });
    this.options.onDesiredChange?.(address, { ...structuredClone(desired.values), $version: desired.version });
    return twinDocument(record);
  }

  /** Merge-patches reported properties, as a device does; returns the new reported `$version`. */
  updateReported(id: TwinId, patch: JsonObject): number {
    const address = toAddress(id);
    const record = this.record(address);
    const nowMs = this.options.clock.now();
    const reported = mergeIntoSection(record.reported, patch, hubTimestamp(nowMs), false);
    checkTwinLimits("reported", patch, reported.values);
    this.bump(record);
    record.reported = reported;
    record.identity.lastActivityTime = hubTimestamp(nowMs);
    const body: JsonObject = { version: record.version, properties: { reported: sectionPatchJson(reported, patch) } };
    this.options.onTwinChange?.({ ...address, generationId: record.identity.generationId, opType: "updateTwin", timestampMs: nowMs, body });
    return reported.version;
  }

  /** What a device receives for GET over MQTT: both sections with `$version`, no `$metadata`. */
  deviceView(id: TwinId): { desired: JsonObject; reported: JsonObject } {
    const record = this.record(toAddress(id));
    return {
      desired: { ...structuredClone(record.desired.values), $version: record.desired.version },
      reported: { ...structuredClone(record.reported.values), $version: record.reported.version },
    };
  }

  /** Connection state is not a twin change: no version, etag or event. */
  setConnectionState(id: TwinId, state: ConnectionState): void {
    const record = this.records.get(recordKey(toAddress(id)));
    if (record === undefined) return;
    const now = hubTimestamp(this.options.clock.now());
    record.identity.connectionState = state;
    record.identity.connectionStateUpdatedTime = now;
    record.identity.lastActivityTime = now;
  }

  private create(address: TwinAddress, options: CreateDeviceOptions): DeviceIdentity {
    for (const id of [address.deviceId, address.moduleId]) {
      if (id !== null && !validId.test(id)) {
        throw hubErrors.argumentInvalid(`Id '${id}' is invalid: up to 128 ASCII letters, digits and - : . + % _ # * ? ! ( ) , = @ ; $ '`);
      }
    }
    const key = recordKey(address);
    if (this.records.has(key)) throw hubErrors.alreadyExists(key);
    const now = hubTimestamp(this.options.clock.now());
    const generation = ++this.generation;
    const identity: DeviceIdentity = {
      deviceId: address.deviceId,
      ...(address.moduleId === null ? {} : { moduleId: address.moduleId }),
      generationId: `63${String(generation).padStart(16, "0")}`,
      etag: opaqueEtag(generation),
      status: options.status ?? "enabled",
      statusReason: options.statusReason ?? null,
      statusUpdatedTime: now,
      connectionState: "Disconnected",
      connectionStateUpdatedTime: now,
      lastActivityTime: "0001-01-01T00:00:00Z",
      cloudToDeviceMessageCount: 0,
      authentication: {
        type: "sas",
        symmetricKey: {
          primaryKey: options.primaryKey || this.options.generateKey(),
          secondaryKey: options.secondaryKey || this.options.generateKey(),
        },
        x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      },
      ...(address.moduleId === null ? { capabilities: { iotEdge: false } } : {}),
    };
    // A new twin is `version` 2 with etag `AAAAAAAAAAE=` and both sections at `$version` 1, their
    // `$metadata` holding `$lastUpdated` only: the lifecycle event body in Microsoft's non-telemetry
    // event schema and the DeviceCreated samples show exactly that, and it fits the observed etag =
    // base64(version − 1) (iothub-facts §1, §2). So a device deleted and created again under its id
    // starts again at version 2, below whatever its previous twin reached.
    const stamp = { lastUpdated: now };
    const record: TwinRecord = { identity, version: 2, etagCounter: 1, tags: {}, desired: emptySection(stamp), reported: emptySection(stamp) };
    this.records.set(key, record);
    this.emitLifecycle(record, "createDeviceIdentity", lifecycleBody(record));
    return structuredClone(identity);
  }

  private emitLifecycle(record: TwinRecord, opType: LifecycleChange["opType"], body: JsonObject): void {
    const { deviceId, moduleId, generationId } = record.identity;
    this.options.onLifecycle?.({ deviceId, moduleId: moduleId ?? null, generationId, opType, timestampMs: this.options.clock.now(), body });
  }

  private bump(record: TwinRecord): void {
    record.version += 1;
    record.etagCounter += 1;
  }

  private record(address: TwinAddress): TwinRecord {
    const record = this.records.get(recordKey(address));
    if (record !== undefined) return record;
    if (address.moduleId !== null && this.records.has(recordKey({ deviceId: address.deviceId, moduleId: null }))) {
      throw hubErrors.moduleNotFound(address.deviceId, address.moduleId);
    }
    throw hubErrors.deviceNotFound(address.deviceId);
  }

  private sortedRecords(): TwinRecord[] {
    return [...this.records.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  }
}

function recordKey(address: TwinAddress): string {
  return address.moduleId === null ? address.deviceId : `${address.deviceId}/${address.moduleId}`;
}

/** An IoT-Hub-looking opaque etag: base64 of an 8-byte big-endian counter (`"AAAAAAAAAAc="`). */
export function opaqueEtag(counter: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(counter));
  return bytes.toString("base64");
}

function twinEtag(record: TwinRecord): string {
  return opaqueEtag(record.etagCounter);
}

/** `If-Match` semantics: absent or `*` forces; otherwise the (unquoted) etag must equal the current one. */
function checkEtag(current: string, given: string | undefined): void {
  if (given === undefined) return;
  const bare = given.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  if (bare === "*" || bare === current) return;
  throw hubErrors.preconditionFailed(current, bare);
}

function sectionOfTags(tags: JsonObject): TwinSection {
  return { values: tags, metadata: { lastUpdated: "", children: {} }, version: 0 };
}

function sectionPatchJson(section: TwinSection, patch: JsonObject): JsonObject {
  const out = structuredClone(patch);
  setOwn(out, "$metadata", metadataForPatch(section, patch));
  setOwn(out, "$version", section.version);
  return out;
}

/** The twin as a lifecycle event carries it (non-telemetry event schema): no identity fields. */
function lifecycleBody(record: TwinRecord): JsonObject {
  const body: JsonObject = { deviceId: record.identity.deviceId };
  if (record.identity.moduleId !== undefined) body.moduleId = record.identity.moduleId;
  body.etag = twinEtag(record);
  body.version = record.version;
  if (Object.keys(record.tags).length > 0) body.tags = structuredClone(record.tags);
  body.properties = { desired: sectionToJson(record.desired), reported: sectionToJson(record.reported) };
  return body;
}

function twinDocument(record: TwinRecord): JsonObject {
  const id = record.identity;
  const doc: JsonObject = { deviceId: id.deviceId };
  if (id.moduleId !== undefined) doc.moduleId = id.moduleId;
  doc.etag = twinEtag(record);
  doc.deviceEtag = id.etag;
  doc.status = id.status;
  if (id.statusReason !== null) doc.statusReason = id.statusReason;
  doc.statusUpdateTime = id.statusUpdatedTime;
  doc.connectionState = id.connectionState;
  doc.lastActivityTime = id.lastActivityTime;
  doc.cloudToDeviceMessageCount = id.cloudToDeviceMessageCount;
  doc.authenticationType = "sas";
  doc.x509Thumbprint = { primaryThumbprint: null, secondaryThumbprint: null };
  doc.modelId = "";
  doc.version = record.version;
  // IoT Hub leaves `tags` out of a twin that has none.
  if (Object.keys(record.tags).length > 0) doc.tags = structuredClone(record.tags);
  doc.properties = { desired: sectionToJson(record.desired), reported: sectionToJson(record.reported) };
  if (id.capabilities !== undefined) doc.capabilities = { iotEdge: id.capabilities.iotEdge };
  return doc;
}
