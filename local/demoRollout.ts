import type { JsonObject } from "../shared/twin/json";

/**
 * The demo rollout of desired properties, in the seed tutorials' shape: `local/demo-policy.json`
 * says how the simulated fleet reports each of them. `npm start` and the end-to-end test send it.
 */
export function demoRollout(patchId: string): JsonObject {
  return {
    fanOn: true,
    components: { climate: { minTemperature: 18, maxTemperature: 26 } },
    telemetryConfig: { sendFrequency: "5m" },
    targetTemperature: 21,
    patchId,
  };
}
