import { seededRandom } from "../emulator/seededRandom";

/** How a simulated device treats its desired properties. */
export type DeviceBehaviour = "prompt" | "slow" | "lossy" | "rejecting" | "offline" | "drifting";

export const deviceBehaviours: readonly DeviceBehaviour[] = ["prompt", "slow", "lossy", "rejecting", "offline", "drifting"];

/** Share of each behaviour in a fleet (weights, need not sum to 1). */
export type BehaviourMix = Partial<Record<DeviceBehaviour, number>>;

export const defaultBehaviourMix: Readonly<Record<DeviceBehaviour, number>> = {
  prompt: 0.4,
  slow: 0.15,
  lossy: 0.15,
  rejecting: 0.1,
  offline: 0.1,
  drifting: 0.1,
};

/** A range `[min, max]` in milliseconds; each device draws its own value from it. */
export type MsRange = readonly [number, number];

export interface BehaviourTiming {
  /** prompt, rejecting, drifting, lossy (when it does not miss) and offline devices once back. */
  promptReportDelay: MsRange;
  slowReportDelay: MsRange;
  /** Chance that a lossy device misses a desired notification. */
  lossyMissProbability: number;
  /** How long an offline device stays disconnected (at start, and after each online spell). */
  offlineFor: MsRange;
  /** How long an offline device stays online before it drops off again. */
  onlineFor: MsRange;
  /** How often a drifting device changes a reported value on its own (after it first complied). */
  driftEvery: MsRange;
}

export const defaultBehaviourTiming: Readonly<BehaviourTiming> = {
  promptReportDelay: [0, 100],
  slowReportDelay: [2_000, 8_000],
  lossyMissProbability: 0.6,
  offlineFor: [10_000, 40_000],
  onlineFor: [60_000, 180_000],
  driftEvery: [15_000, 45_000],
};

/**
 * Deals behaviours to `count` devices in proportion to `mix` (largest remainders), then shuffles
 * with a PRNG seeded by `seed`: the same seed gives the same fleet.
 */
export function assignBehaviours(count: number, mix: BehaviourMix = defaultBehaviourMix, seed = 1): DeviceBehaviour[] {
  const entries = deviceBehaviours.map((b) => [b, Math.max(0, mix[b] ?? 0)] as const).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (total <= 0) throw new Error("behaviour mix has no positive weight; give at least one behaviour a share, e.g. { prompt: 1 }");
  const exact = entries.map(([b, w]) => ({ behaviour: b, exact: (w / total) * count }));
  const counts = exact.map((e) => ({ behaviour: e.behaviour, n: Math.floor(e.exact), rest: e.exact - Math.floor(e.exact) }));
  let missing = count - counts.reduce((sum, c) => sum + c.n, 0);
  for (const c of [...counts].sort((a, b) => b.rest - a.rest)) {
    if (missing <= 0) break;
    c.n++;
    missing--;
  }
  const out = counts.flatMap((c) => Array.from({ length: c.n }, () => c.behaviour));
  const random = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A PRNG of a device's own, from the fleet seed and its id (FNV-1a of both). */
export function deviceRandom(seed: number, deviceId: string): () => number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (const byte of Buffer.from(deviceId, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return seededRandom(hash);
}

export function drawMs(random: () => number, [min, max]: MsRange): number {
  return Math.round(min + random() * Math.max(0, max - min));
}
