import { z } from "zod";

/** A JSON value as read back from a jsonb column (null for SQL NULL too). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const jsonValue = z.json() as z.ZodType<JsonValue>;
