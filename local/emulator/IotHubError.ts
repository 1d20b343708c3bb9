/**
 * An error as IoT Hub reports it: HTTP status, error code (`DeviceNotFound`, `PreconditionFailed`…)
 * and text. `name` matches the class azure-iothub raises for the same status, so in-process callers
 * can branch on `err.name` exactly as they do with the SDK (`InvalidEtagError`, `ThrottlingError`…).
 */
export class IotHubError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.name = sdkErrorName(status, code);
  }

  /** The response body IoT Hub sends: `{"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":"Tracking ID:…"}`. */
  toBody(trackingId: string, timestamp: string): { Message: string; ExceptionMessage: string } {
    return {
      Message: `ErrorCode:${this.code};${this.message}`,
      ExceptionMessage: `Tracking ID:${trackingId}-G:0-TimeStamp:${timestamp}`,
    };
  }
}

function sdkErrorName(status: number, code: string): string {
  switch (status) {
    case 400:
      return "ArgumentError";
    case 401:
      return "UnauthorizedError";
    case 404:
      return code === "DeviceNotFound" ? "DeviceNotFoundError" : code === "ModuleNotFound" ? "ModuleNotFoundError" : "NotFoundError";
    case 409:
      return "DeviceAlreadyExistsError";
    case 412:
      return "InvalidEtagError";
    case 429:
      return "ThrottlingError";
    default:
      return "IotHubError";
  }
}

export const hubErrors = {
  deviceNotFound: (deviceId: string) => new IotHubError(404, "DeviceNotFound", `Device ${deviceId} not registered`),
  moduleNotFound: (deviceId: string, moduleId: string) =>
    new IotHubError(404, "ModuleNotFound", `Module ${moduleId} on device ${deviceId} not registered`),
  alreadyExists: (what: string) => new IotHubError(409, what.includes("/") ? "ModuleAlreadyExistsOnDevice" : "DeviceAlreadyExists", `A device or module with ID ${what} already exists`),
  preconditionFailed: (existing: string, given: string) =>
    new IotHubError(412, "PreconditionFailed", `Precondition failed: Device version did not match, existingEtag:${existing} newEtag:${given}`),
  argumentInvalid: (text: string) => new IotHubError(400, "ArgumentInvalid", text),
  badRequest: (text: string) => new IotHubError(400, "BadRequest", text),
  throttled: (operation: string) =>
    new IotHubError(429, "ThrottlingException", `The request has been throttled. Wait 10 seconds and try again. Operation type: ${operation}`),
  unauthorized: (text = "Unauthorized") => new IotHubError(401, "IotHubUnauthorizedAccess", text),
};
