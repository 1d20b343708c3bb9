/** How a rule compares a desired property with what the device reports (a policy's `compare`). */
export const COMPARE_MODES = ["equals", "looseEquals", "ack", "status", "ignore"] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];
