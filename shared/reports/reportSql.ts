import { deviceStateIsSql, recordStateIsSql } from "./complianceStates";
import type { ReportFilters, TagFilter } from "./reportQuery";

/** Collects positional parameters: every value reaches SQL as `$n`, never as text in the statement. */
export class SqlParams {
  readonly values: unknown[] = [];
  add(value: unknown, cast = ""): string {
    this.values.push(value);
    return `$${this.values.length}${cast}`;
  }
}

/**
 * The tag filter as jsonb containment (served by the GIN index on devices.tags): the query string
 * value matches the tag as a string, and also as the number or boolean it spells (`tag.floor=3`
 * matches `{"floor": 3}` and `{"floor": "3"}`).
 */
export function tagFilterSql(alias: string, tag: TagFilter, params: SqlParams): string {
  const candidates: unknown[] = [tag.value];
  if (/^-?(0|[1-9]\d{0,14})(\.\d{1,15})?$/.test(tag.value)) candidates.push(Number(tag.value));
  if (tag.value === "true" || tag.value === "false") candidates.push(tag.value === "true");
  const docs = candidates.map((v) => tag.path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), v));
  return `(${docs.map((doc) => `${alias}.tags @> ${params.add(JSON.stringify(doc), "::jsonb")}`).join(" OR ")})`;
}

/**
 * Which devices a filter selects: tags match, and either the device has a record at `property`
 * (in `state` when given), or — without `property` — the device itself is in `state`.
 */
export function deviceFilterSql(d: string, filters: ReportFilters, params: SqlParams, now: string): string[] {
  const where = filters.tags.map((t) => tagFilterSql(d, t, params));
  if (filters.property !== undefined) {
    const stateSql = filters.state ? ` AND ${recordStateIsSql("fr", filters.state, params.add(filters.state), now)}` : "";
    where.push(
      `EXISTS (SELECT 1 FROM property_records fr WHERE fr.device_id = ${d}.device_id AND fr.module_id = ${d}.module_id` +
        ` AND fr.path_key = md5(${params.add(filters.property)})${stateSql})`,
    );
  } else if (filters.state) {
    where.push(deviceStateIsSql(d, filters.state, params.add(filters.state), now));
  }
  return where;
}

/** Which property records a filter selects: their device's tags match, path = `property`, record in `state`. */
export function recordFilterSql(r: string, d: string, filters: ReportFilters, params: SqlParams, now: string): string[] {
  const where = filters.tags.map((t) => tagFilterSql(d, t, params));
  // By path_key, the form indexes hold the path in (004_integrity.sql).
  if (filters.property !== undefined) where.push(`${r}.path_key = md5(${params.add(filters.property)})`);
  if (filters.state) where.push(recordStateIsSql(r, filters.state, params.add(filters.state), now));
  return where;
}

export function whereSql(conditions: string[]): string {
  return conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";
}
