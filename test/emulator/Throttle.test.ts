import { createManualClock } from "../../local/emulator/Clock";
import { Throttle, TokenBucket, tierRates } from "../../local/emulator/Throttle";

test("a token bucket allows a burst up to its capacity, then refills at its rate", () => {
  const clock = createManualClock(0);
  const bucket = new TokenBucket(50, 50, clock);
  for (let i = 0; i < 50; i++) expect(bucket.tryTake()).toBe(true);
  expect(bucket.tryTake()).toBe(false);
  clock.advance(100);
  for (let i = 0; i < 5; i++) expect(bucket.tryTake()).toBe(true);
  expect(bucket.tryTake()).toBe(false);
  clock.advance(60_000);
  expect(bucket.available()).toBe(50);
});

test.each([
  ["twinRead", 100, 1000],
  ["twinUpdate", 50, 1000],
  ["query", 20, 60_000],
] as const)("S1 allows %s %i times per window and refuses the next with a count", (operation, quota, windowMs) => {
  const clock = createManualClock(0);
  const throttle = new Throttle(clock, "S1");
  for (let i = 0; i < quota; i++) expect(throttle.tryAcquire(operation)).toBe(true);
  expect(throttle.tryAcquire(operation)).toBe(false);
  expect(throttle.refused[operation]).toBe(1);
  clock.advance(windowMs);
  for (let i = 0; i < quota; i++) expect(throttle.tryAcquire(operation)).toBe(true);
  expect(throttle.tryAcquire(operation)).toBe(false);
});

test("queries refill one every three seconds on S1", () => {
  const clock = createManualClock(0);
  const throttle = new Throttle(clock, "S1");
  for (let i = 0; i < 20; i++) throttle.tryAcquire("query");
  clock.advance(2999);
  expect(throttle.tryAcquire("query")).toBe(false);
  clock.advance(1);
  expect(throttle.tryAcquire("query")).toBe(true);
});

test("throttling off never refuses", () => {
  const throttle = new Throttle(createManualClock(0), "off");
  for (let i = 0; i < 1000; i++) expect(throttle.tryAcquire("query")).toBe(true);
});

test("device-side consumption drains the shared bucket without being refused", () => {
  const throttle = new Throttle(createManualClock(0), "S1");
  for (let i = 0; i < 60; i++) throttle.consume("twinUpdate");
  expect(throttle.tryAcquire("twinUpdate")).toBe(false);
});

test("tiers scale with units as the quota table says", () => {
  expect(tierRates("S3", 2)).toEqual({ twinRead: 1000, twinUpdate: 500, query: 2000 / 60 });
  expect(tierRates("S2", 20).twinRead).toBe(200);
});
