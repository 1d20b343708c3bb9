/**
 * A JSON Schema (2020-12) check for the subset openApiDocument.ts uses. Deliberately small instead
 * of a validator library (ajv 8 would be a new dependency for ~80 lines of need): it rejects any
 * keyword it does not implement, so the document cannot use a keyword this check silently ignores.
 */
type Schema = { [keyword: string]: unknown };

const annotations = new Set(["description", "title", "default", "examples"]);
const implemented = new Set([
  "$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
  "minimum", "maximum", "minLength", "maxLength", "pattern", "format",
]);

export function validateJsonSchema(value: unknown, schema: Schema, root: Schema, at = "$"): string[] {
  for (const keyword of Object.keys(schema)) {
    if (!implemented.has(keyword) && !annotations.has(keyword)) throw new Error(`${at}: schema keyword '${keyword}' is not supported by this check`);
  }
  if (typeof schema.$ref === "string") {
    const target = schema.$ref.replace(/^#\//, "").split("/").reduce<unknown>((node, key) => (node as Schema | undefined)?.[key], root);
    if (!target) throw new Error(`${at}: unresolved $ref ${schema.$ref}`);
    return validateJsonSchema(value, target as Schema, root, at);
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => hasType(value, t))) return [`${at}: expected ${types.join(" | ")}, got ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: ${value} > maximum ${schema.maximum}`);
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) errors.push(`${at}: does not match ${schema.pattern}`);
    if (schema.format === "date-time" && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) errors.push(`${at}: not a date-time`);
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => errors.push(...validateJsonSchema(item, schema.items as Schema, root, `${at}[${i}]`)));
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) if (!(name in object)) errors.push(`${at}: missing required '${name}'`);
    for (const [name, v] of Object.entries(object)) {
      const propertySchema = properties[name];
      if (propertySchema) errors.push(...validateJsonSchema(v, propertySchema, root, `${at}.${name}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: unexpected property '${name}'`);
      else if (typeof schema.additionalProperties === "object") errors.push(...validateJsonSchema(v, schema.additionalProperties as Schema, root, `${at}.${name}`));
    }
  }
  return errors;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "null": return value === null;
    case "array": return Array.isArray(value);
    case "object": return value !== null && typeof value === "object" && !Array.isArray(value);
    case "integer": return Number.isInteger(value);
    case "number": return typeof value === "number" && Number.isFinite(value);
    default: return typeof value === type;
  }
}
