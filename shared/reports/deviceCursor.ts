import { z } from "zod";
import { storableText } from "../twin/storableText";

/** The position after which the next device page starts: the last (deviceId, moduleId) returned. */
export interface DeviceCursor {
  deviceId: string;
  moduleId: string;
}

// Ids as the store holds them: text PostgreSQL can keep (a forged NUL would fail the query, not the parameter).
const cursorId = z.string().max(256).refine(storableText);
const cursorJson = z.object({ v: z.literal(1), d: cursorId, m: cursorId }).strict();

/** An opaque cursor: base64url of a small versioned JSON object. */
export function encodeDeviceCursor(cursor: DeviceCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, d: cursor.deviceId, m: cursor.moduleId })).toString("base64url");
}

/** Decodes a cursor from a query string; undefined when it is not one this API issued. */
export function decodeDeviceCursor(text: string): DeviceCursor | undefined {
  if (text.length > 1100 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const parsed = cursorJson.safeParse(JSON.parse(Buffer.from(text, "base64url").toString("utf8")));
    return parsed.success ? { deviceId: parsed.data.d, moduleId: parsed.data.m } : undefined;
  } catch {
    return undefined;
  }
}

/** The `cursor` query parameter. */
export const cursorParam = z.string().transform((text, ctx) => {
  const cursor = decodeDeviceCursor(text);
  if (!cursor) {
    ctx.addIssue({ code: "custom", message: "is not a cursor returned by this API (pass nextCursor unchanged)" });
    return z.NEVER;
  }
  return cursor;
});
