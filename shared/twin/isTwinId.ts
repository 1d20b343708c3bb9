/** IoT Hub's rule for device and module ids, in words for error messages. */
export const TWIN_ID_RULE = "1 to 128 characters, ASCII letters and digits and - : . + % _ # * ? ! ( ) , = @ ; $ '";

const TWIN_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;

/** Whether `value` is a device or module id IoT Hub could have issued (which also makes it storable text). */
export function isTwinId(value: unknown): value is string {
  return typeof value === "string" && TWIN_ID.test(value);
}
