import type { CounterDrift } from "../../shared/store/reportCounters";

/** `repair-counters` output: one line per key that was off, or that none was. */
export function formatRepair(drift: readonly CounterDrift[]): string {
  if (drift.length === 0) return "report counters: equal to the tables, nothing to repair\n";
  const lines = drift.map((d) => `  ${d.kind} ${d.kind === "record" ? `${d.path} ` : ""}${d.state}: counted ${d.counted}, actual ${d.actual}`);
  return `report counters: repaired ${drift.length} ${drift.length === 1 ? "key" : "keys"}\n${lines.join("\n")}\n`;
}
