/**
 * One timer wait, two abort behaviours on purpose: shared/sleep rejects with the signal's reason (the
 * limiter and the re-push must not carry on), local/host/sleep resolves (loops that check the signal).
 */
import { sleep } from "../../shared/sleep";
import { sleep as hostSleep } from "../../local/host/sleep";

class Stop extends Error {}

describe("sleep", () => {
  it("resolves after the time has passed", async () => {
    const started = Date.now();
    await sleep(30);
    await hostSleep(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });

  it("rejects with the signal's reason when aborted during or before the wait", async () => {
    const during = new AbortController();
    const waiting = sleep(10_000, during.signal);
    during.abort(new Stop("lease ending"));
    await expect(waiting).rejects.toBeInstanceOf(Stop);
    await expect(sleep(10_000, AbortSignal.abort(new Stop("already")))).rejects.toBeInstanceOf(Stop);
  });

  it("the host's sleep resolves at once on abort", async () => {
    const during = new AbortController();
    const started = Date.now();
    const waiting = hostSleep(10_000, during.signal);
    during.abort(new Stop("shutdown"));
    await expect(waiting).resolves.toBeUndefined();
    await expect(hostSleep(10_000, AbortSignal.abort())).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
