/** Stable partition of a device (FNV-1a 32-bit of the device id, modulo the partition count): a device's events stay in order. */
export function partitionForDevice(deviceId: string, partitionCount: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(deviceId, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitionCount;
}
