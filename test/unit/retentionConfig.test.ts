import { ConfigError, loadConfig } from "../../shared/config";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.setting}: ${i.problem}`);
    throw error;
  }
  return [];
}

describe("retention settings", () => {
  it("keep history 90 days and dead letters 30 days, pruned hourly, by default", () => {
    expect(loadConfig({}).retention).toEqual({ schedule: "0 0 * * * *", historyMs: 7_776_000_000, deadLetterMs: 2_592_000_000 });
  });

  it("read HISTORY_RETENTION, DEAD_LETTER_RETENTION and RETENTION_SCHEDULE in either duration form", () => {
    expect(loadConfig({ HISTORY_RETENTION: "P300D", DEAD_LETTER_RETENTION: "7d", RETENTION_SCHEDULE: "0 */10 * * * *" }).retention).toEqual({
      schedule: "0 */10 * * * *",
      historyMs: 300 * 86_400_000,
      deadLetterMs: 7 * 86_400_000,
    });
  });

  it("refuse a retention under a day or over a year, naming the setting and the bounds", () => {
    expect(problems({ HISTORY_RETENTION: "1h", DEAD_LETTER_RETENTION: "366d" })).toEqual([
      'HISTORY_RETENTION: "1h" is too short: at least 1d (a duration from 1d to 365d)',
      'DEAD_LETTER_RETENTION: "366d" is too long: at most 365d (a duration from 1d to 365d)',
    ]);
  });

  it("refuse a schedule that is not NCRONTAB, and a retention that is not a duration", () => {
    expect(problems({ RETENTION_SCHEDULE: "hourly", HISTORY_RETENTION: "forever" })).toEqual([
      expect.stringMatching(/^HISTORY_RETENTION: "forever" is not a duration/),
      expect.stringMatching(/^RETENTION_SCHEDULE: must be an NCRONTAB expression with 6 fields/),
    ]);
  });
});
