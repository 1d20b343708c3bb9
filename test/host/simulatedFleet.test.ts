import { assignBehaviours, deviceRandom } from "../../local/fleet/DeviceBehaviour";
import { reportedPatchFor } from "../../local/fleet/reportedPatchFor";

// The fleet's pure parts: what a device reports for a desired delta, and how behaviours are dealt.

const accept = { desiredVersion: 7, rejectTargetTemperature: false, rejectTelemetryConfig: false, targetTemperatureInUse: 20 };

describe("reportedPatchFor", () => {
  test("reports in the seed tutorial's layout: flat component values, patch id, status and PnP acknowledgements", () => {
    const delta = {
      fanOn: true,
      components: { climate: { __t: "c", minTemperature: 18, maxTemperature: 26 } },
      telemetryConfig: { sendFrequency: "5m" },
      targetTemperature: 21,
      patchId: "p-1",
      $version: 7,
    };
    expect(reportedPatchFor(delta, accept)).toEqual({
      fanOn: true,
      minTemperature: 18,
      maxTemperature: 26,
      telemetryConfig: { sendFrequency: "5m", status: "success" },
      targetTemperature: { value: 21, ac: 200, av: 7, ad: "applied" },
      lastPatchReceivedId: "p-1",
    });
  });

  test("a rejecting device answers 400 with the value it keeps, or an error status", () => {
    const patch = reportedPatchFor(
      { targetTemperature: 35, telemetryConfig: { sendFrequency: "1s" } },
      { ...accept, rejectTargetTemperature: true, rejectTelemetryConfig: true },
    );
    expect(patch.targetTemperature).toMatchObject({ value: 20, ac: 400, av: 7 });
    expect(patch.telemetryConfig).toMatchObject({ sendFrequency: "1s", status: "error" });
  });

  test("a removed desired property removes the reported one", () => {
    expect(reportedPatchFor({ targetTemperature: null, fanOn: null }, accept)).toEqual({ targetTemperature: null, fanOn: null });
  });
});

describe("assignBehaviours", () => {
  test("deals behaviours in proportion to the mix, the same way for the same seed", () => {
    const fleet = assignBehaviours(200, { prompt: 0.5, lossy: 0.25, offline: 0.25 }, 42);
    expect(fleet.filter((b) => b === "prompt")).toHaveLength(100);
    expect(fleet.filter((b) => b === "lossy")).toHaveLength(50);
    expect(assignBehaviours(200, { prompt: 0.5, lossy: 0.25, offline: 0.25 }, 42)).toEqual(fleet);
    expect(assignBehaviours(200, { prompt: 0.5, lossy: 0.25, offline: 0.25 }, 43)).not.toEqual(fleet);
  });

  test("gives each device its own reproducible random sequence", () => {
    const a = deviceRandom(1, "sim-001");
    const b = deviceRandom(1, "sim-001");
    const c = deviceRandom(1, "sim-002");
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(first);
    expect([c(), c(), c()]).not.toEqual(first);
  });
});
