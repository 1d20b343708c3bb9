import { isJsonObject, type Json, type JsonObject } from "../../shared/twin/json";

/**
 * One section of a twin (desired or reported) as the emulator keeps it: the values, their
 * `$metadata` tree and the section `$version`. Pure: every function returns a new section.
 *
 * IoT Hub rules implemented here: a merge patch adds/overwrites keys, `null` deletes, nested
 * objects merge, arrays are replaced whole; `$lastUpdated` is stamped at every level a patch
 * touches; desired metadata also carries `$lastUpdatedVersion` (the section `$version` of that change).
 * Every key is an ordinary key, `__proto__`, `constructor` and `prototype` included: reads go through
 * `ownValue` and writes through `setOwn`, so a key never reaches a prototype (test/fixtures/twinMergeCases.ts).
 */
export interface TwinSection {
  values: JsonObject;
  metadata: MetadataNode;
  version: number;
}

export interface MetadataNode {
  lastUpdated: string;
  /** Desired sections only. */
  lastUpdatedVersion?: number;
  children: Record<string, MetadataNode>;
}

/** What a change stamps into `$metadata`. */
export interface MetadataStamp {
  lastUpdated: string;
  lastUpdatedVersion?: number;
}

export function emptySection(stamp: MetadataStamp): TwinSection {
  return { values: {}, metadata: node(stamp), version: 1 };
}

/** Applies a merge patch; the section `$version` rises by one (even when no value changes, as IoT Hub does). */
export function mergeIntoSection(section: TwinSection, patch: JsonObject, lastUpdated: string, withVersion: boolean): TwinSection {
  const version = section.version + 1;
  const stamp = withVersion ? { lastUpdated, lastUpdatedVersion: version } : { lastUpdated };
  const values = cloneObject(section.values);
  const metadata = cloneMetadata(section.metadata);
  stampNode(metadata, stamp);
  mergeObject(values, metadata, patch, stamp);
  return { values, metadata, version };
}

/** The same values and metadata at the next `$version` (a tags update bumps the desired section so). */
export function bumpSectionVersion(section: TwinSection): TwinSection {
  return { values: cloneObject(section.values), metadata: cloneMetadata(section.metadata), version: section.version + 1 };
}

/** Replaces the whole section (PUT semantics): every key is stamped anew; `null` values are dropped. */
export function replaceSection(section: TwinSection, replacement: JsonObject, lastUpdated: string, withVersion: boolean): TwinSection {
  const version = section.version + 1;
  const stamp = withVersion ? { lastUpdated, lastUpdatedVersion: version } : { lastUpdated };
  const values: JsonObject = {};
  const metadata = node(stamp);
  mergeObject(values, metadata, replacement, stamp);
  return { values, metadata, version };
}

/** The section as GET /twins returns it: values plus `$metadata` and `$version`. */
export function sectionToJson(section: TwinSection): JsonObject {
  const out = cloneObject(section.values);
  setOwn(out, "$metadata", metadataToJson(section.metadata));
  setOwn(out, "$version", section.version);
  return out;
}

/** The `$metadata` of exactly the keys a patch carried (deleted keys have none), as a twin-change event holds it. */
export function metadataForPatch(section: TwinSection, patch: JsonObject): JsonObject {
  return metadataForKeys(section.metadata, patch);
}

function metadataForKeys(meta: MetadataNode, patch: JsonObject): JsonObject {
  const out = stampJson(meta);
  for (const [key, value] of Object.entries(patch)) {
    const child = ownValue(meta.children, key);
    if (value === null || child === undefined) continue;
    setOwn(out, key, isJsonObject(value) ? metadataForKeys(child, value) : metadataToJson(child));
  }
  return out;
}

export function metadataToJson(meta: MetadataNode): JsonObject {
  const out = stampJson(meta);
  for (const [key, child] of Object.entries(meta.children)) setOwn(out, key, metadataToJson(child));
  return out;
}

function stampJson(meta: MetadataNode): JsonObject {
  return meta.lastUpdatedVersion === undefined
    ? { $lastUpdated: meta.lastUpdated }
    : { $lastUpdated: meta.lastUpdated, $lastUpdatedVersion: meta.lastUpdatedVersion };
}

function mergeObject(target: JsonObject, meta: MetadataNode, patch: JsonObject, stamp: MetadataStamp): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
      delete meta.children[key];
      continue;
    }
    if (isJsonObject(value)) {
      const existing = ownValue(target, key);
      const child = ownValue(meta.children, key);
      const targetChild: JsonObject = isJsonObject(existing) ? existing : {};
      const metaChild: MetadataNode = isJsonObject(existing) && child !== undefined ? child : node(stamp);
      stampNode(metaChild, stamp);
      setOwn(target, key, targetChild);
      setOwn(meta.children, key, metaChild);
      mergeObject(targetChild, metaChild, value, stamp);
    } else {
      setOwn(target, key, cloneJson(value));
      setOwn(meta.children, key, node(stamp));
    }
  }
}

function node(stamp: MetadataStamp): MetadataNode {
  return { ...stamp, children: {} };
}

function stampNode(meta: MetadataNode, stamp: MetadataStamp): void {
  meta.lastUpdated = stamp.lastUpdated;
  if (stamp.lastUpdatedVersion !== undefined) meta.lastUpdatedVersion = stamp.lastUpdatedVersion;
}

function cloneMetadata(meta: MetadataNode): MetadataNode {
  const children: Record<string, MetadataNode> = {};
  for (const [key, child] of Object.entries(meta.children)) setOwn(children, key, cloneMetadata(child));
  return { ...meta, children };
}

export function cloneJson<T extends Json>(value: T): T {
  return structuredClone(value);
}

function cloneObject(value: JsonObject): JsonObject {
  return structuredClone(value);
}

/** A key's own value (`undefined` when absent): `obj[key]` would read `Object.prototype` for `__proto__`. */
export function ownValue<T>(target: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

/** Assignment that treats `__proto__` and friends as plain keys. */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
