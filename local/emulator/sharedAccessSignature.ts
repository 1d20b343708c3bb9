import { createHmac, timingSafeEqual } from "node:crypto";

/** The fields of `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]`, URL-decoded. */
export interface SharedAccessSignatureFields {
  sr: string;
  sig: string;
  se: string;
  skn?: string;
}

export function parseSharedAccessSignature(value: string | undefined): SharedAccessSignatureFields | null {
  const match = /^SharedAccessSignature\s+(.+)$/.exec(value?.trim() ?? "");
  if (!match) return null;
  const fields: Record<string, string> = {};
  for (const pair of match[1]!.split("&")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return null;
    try {
      fields[pair.slice(0, eq)] = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return null;
    }
  }
  const { sr, sig, se, skn } = fields;
  if (sr === undefined || sig === undefined || se === undefined) return null;
  return { sr, sig, se, ...(skn === undefined ? {} : { skn }) };
}

/** The signature IoT Hub expects: HMAC-SHA256 of `encodeURIComponent(sr) + "\n" + se` with the base64 key. */
export function signSharedAccess(resourceUri: string, expiry: string, base64Key: string): string {
  return createHmac("sha256", Buffer.from(base64Key, "base64"))
    .update(`${encodeURIComponent(resourceUri)}\n${expiry}`)
    .digest("base64");
}

/** True when `fields` is signed by one of `keys` and has not expired at `nowMs` (`se` is in seconds). */
export function verifySharedAccessSignature(fields: SharedAccessSignatureFields, keys: readonly string[], nowMs: number): boolean {
  const expiry = Number(fields.se);
  if (!Number.isFinite(expiry) || expiry * 1000 <= nowMs) return false;
  const given = Buffer.from(fields.sig, "base64");
  return keys.some((key) => {
    const expected = Buffer.from(signSharedAccess(fields.sr, fields.se, key), "base64");
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}

/** A SAS token for `resourceUri` (e.g. `localhost/devices/d1`), for tests and tools. */
export function createSharedAccessSignature(resourceUri: string, base64Key: string, expirySeconds: number, keyName?: string): string {
  const se = String(Math.floor(expirySeconds));
  const sig = signSharedAccess(resourceUri, se, base64Key);
  const skn = keyName === undefined ? "" : `&skn=${encodeURIComponent(keyName)}`;
  return `SharedAccessSignature sr=${encodeURIComponent(resourceUri)}&sig=${encodeURIComponent(sig)}&se=${se}${skn}`;
}
