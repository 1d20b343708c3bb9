import { SharedAccessSignature } from "azure-iothub";
import {
  createSharedAccessSignature,
  parseSharedAccessSignature,
  signSharedAccess,
  verifySharedAccessSignature,
} from "../../local/emulator/sharedAccessSignature";

const key = Buffer.alloc(32, 3).toString("base64");
const otherKey = Buffer.alloc(32, 4).toString("base64");
const now = Date.UTC(2026, 0, 1);

test("a token signed with the key verifies until it expires", () => {
  const fields = parseSharedAccessSignature(createSharedAccessSignature("localhost/devices/d1", key, now / 1000 + 60))!;
  expect(fields.sr).toBe("localhost/devices/d1");
  expect(verifySharedAccessSignature(fields, [otherKey, key], now)).toBe(true);
  expect(verifySharedAccessSignature(fields, [otherKey], now)).toBe(false);
  expect(verifySharedAccessSignature(fields, [key], now + 61_000)).toBe(false);
});

test("the signature is HMAC-SHA256 over the encoded resource and expiry, as azure-iothub computes it", () => {
  // azure-iothub's own SharedAccessSignature.create gives the same (URL-encoded) sig for the same inputs.
  const sdkSig = SharedAccessSignature.create("localhost", "iothubowner", key, 1800000000).sig;
  expect(signSharedAccess("localhost", "1800000000", key)).toBe(decodeURIComponent(sdkSig));
});

test("the key name is kept and malformed headers are rejected", () => {
  expect(parseSharedAccessSignature(createSharedAccessSignature("localhost", key, 1, "iothubowner"))?.skn).toBe("iothubowner");
  expect(parseSharedAccessSignature("Bearer abc")).toBeNull();
  expect(parseSharedAccessSignature("SharedAccessSignature sr=x&se=1")).toBeNull();
  expect(parseSharedAccessSignature(undefined)).toBeNull();
});
