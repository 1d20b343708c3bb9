import { isJsonObject } from "../../shared/twin/json";

/**
 * The reported patch a simulated device writes for a desired delta, in the seed tutorial's layout:
 * - `components.<c>.<p>` reported flat as `<p>` (e.g. `minTemperature`, `maxTemperature`);
 * - `patchId` acknowledged as `lastPatchReceivedId`;
 * - `telemetryConfig` acknowledged with a `status` field (`success`, or `error` when rejected);
 * - `targetTemperature` acknowledged the IoT Plug and Play way, `{value, ac, av, ad?}` with `av`
 *   the desired `$version` (400 and the value still in use when rejected);
 * - anything else (e.g. `fanOn`) reported at the same path with the same value.
 * `$`-keys are never reported; `null` (desired property removed) removes the reported one.
 */
export interface ReportOptions {
  /** `$version` of the desired section the delta belongs to. */
  desiredVersion: number;
  rejectTargetTemperature: boolean;
  rejectTelemetryConfig: boolean;
  /** The target temperature the device keeps using when it rejects a new one. */
  targetTemperatureInUse: unknown;
}

export function reportedPatchFor(delta: Record<string, unknown>, options: ReportOptions): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(delta)) {
    if (key.startsWith("$")) continue;
    switch (key) {
      case "components":
        if (isJsonObject(value)) {
          for (const component of Object.values(value)) {
            if (!isJsonObject(component)) continue;
            for (const [name, v] of Object.entries(component)) if (!name.startsWith("$") && name !== "__t") patch[name] = v;
          }
        }
        break;
      case "patchId":
        patch.lastPatchReceivedId = value;
        break;
      case "telemetryConfig":
        patch.telemetryConfig = !isJsonObject(value)
          ? value
          : options.rejectTelemetryConfig
            ? { ...withoutMeta(value), status: "error", error: "sendFrequency not supported by this firmware" }
            : { ...withoutMeta(value), status: "success" };
        break;
      case "targetTemperature":
        patch.targetTemperature =
          value === null
            ? null
            : options.rejectTargetTemperature
              ? { value: options.targetTemperatureInUse ?? null, ac: 400, av: options.desiredVersion, ad: "targetTemperature out of range for this device" }
              : { value, ac: 200, av: options.desiredVersion, ad: "applied" };
        break;
      default:
        patch[key] = isJsonObject(value) ? withoutMeta(value) : value;
    }
  }
  return patch;
}

function withoutMeta(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith("$")) out[k] = isJsonObject(v) ? withoutMeta(v) : v;
  return out;
}
