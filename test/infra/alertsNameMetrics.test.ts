/**
 * The alert rules (infra/modules/alerts.bicep → infra/alerts/*.kql) and the workbook
 * (infra/workbook.json) name only metrics listed in shared/telemetry/metricNames.ts, filter only on
 * attributes that list documents for them, and cover what an operator must be told about.
 *
 * How the KQL is read: OpenTelemetry metrics reach Application Insights' customMetrics table with
 * the instrument name in `name` and the attributes in `customDimensions`; every query that reads
 * customMetrics must pick its metrics with `name == "…"` or `name in ("…", …)` (a query without such
 * a filter fails here, so a metric cannot hide behind another spelling). Strings are double-quoted;
 * `//` comments are ignored.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { METRIC_NAMES } from "../../shared/telemetry/metricNames";
import { blockAt, code, infraDir, readBicep } from "./bicepText";

const root = path.join(__dirname, "..", "..");
const alertsBicep = readBicep(path.join("modules", "alerts.bicep"));

/** The doc comment above each metric in metricNames.ts, by metric name (read from the source, not the module). */
function metricDocs(): Map<string, string> {
  const source = readFileSync(path.join(root, "shared", "telemetry", "metricNames.ts"), "utf8");
  const docs = new Map<string, string>();
  for (const m of source.matchAll(/\/\*\*([\s\S]*?)\*\/\s*\w+:\s*\{\s*name:\s*"([^"]+)"/g)) docs.set(m[2] ?? "", m[1] ?? "");
  return docs;
}

const withoutComments = (kql: string) => kql.replace(/\/\/[^\n]*/g, "");

interface MetricUse {
  /** Metrics one `customMetrics` segment picks. */
  metrics: string[];
  /** `customDimensions["key"]` compared with a literal (`== "value"`), or only read (value undefined). */
  attributes: { key: string; value?: string }[];
}

/** Each `customMetrics` reference of a query with the metrics and attributes named up to the next one. */
function metricUses(kql: string): MetricUse[] {
  const text = withoutComments(kql);
  const segments = text.split(/\bcustomMetrics\b/).slice(1);
  return segments.map((segment) => {
    const metrics = [
      ...[...segment.matchAll(/\bname\s*==\s*"([^"]*)"/g)].map((m) => m[1] ?? ""),
      ...[...segment.matchAll(/\bname\s+in\s*\(([^)]*)\)/g)].flatMap((m) => [...(m[1] ?? "").matchAll(/"([^"]*)"/g)].map((n) => n[1] ?? "")),
    ];
    const attributes = [...segment.matchAll(/customDimensions\["([^"]+)"\]\)?(?:\s*==\s*"([^"]*)")?/g)].map((m) =>
      m[2] === undefined ? { key: m[1] ?? "" } : { key: m[1] ?? "", value: m[2] },
    );
    return { metrics, attributes };
  });
}

interface AlertRule {
  file: string;
  query: string;
  measure: string;
  dimensions: string[];
  threshold: string;
}

/** The entries of `var rules = [ … ]` in alerts.bicep: query file, measure column, split-by columns. */
function alertRules(): AlertRule[] {
  const at = code(alertsBicep).search(/\bvar rules\s*=\s*\[/);
  if (at < 0) throw new Error("alerts.bicep has no `var rules = [` block");
  const block = blockAt(alertsBicep, at);
  const starts = [...block.matchAll(/query: loadTextContent\('\.\.\/alerts\/([^']+)'\)/g)];
  return starts.map((start, i) => {
    const body = block.slice(start.index ?? 0, starts[i + 1]?.index ?? block.length);
    const file = start[1] ?? "";
    const dimensionsBlock = /dimensions: \[([\s\S]*?)\n {4}\]/.exec(body)?.[1] ?? "";
    return {
      file,
      query: readFileSync(path.join(infraDir, "alerts", file), "utf8"),
      measure: /measure: '([^']+)'/.exec(body)?.[1] ?? "",
      dimensions: [...dimensionsBlock.matchAll(/name: '([^']+)'/g)].map((m) => m[1] ?? ""),
      threshold: /threshold: ([^\n]+)/.exec(body)?.[1]?.trim() ?? "",
    };
  });
}

interface WorkbookItem {
  type: number;
  name: string;
  content: { query?: string; title?: string };
}

const workbook = JSON.parse(readFileSync(path.join(infraDir, "workbook.json"), "utf8")) as {
  version: string;
  items: WorkbookItem[];
  fallbackResourceIds: string[];
};
const workbookQueries = workbook.items.filter((item) => item.type === 3).map((item) => ({ name: item.name, query: item.content.query ?? "" }));
const rules = alertRules();
const docs = metricDocs();
const allQueries = [...rules.map((r) => ({ name: `alert ${r.file}`, query: r.query })), ...workbookQueries.map((q) => ({ name: `workbook ${q.name}`, query: q.query }))];

describe("alert rules and workbook name only metrics the code emits", () => {
  it("reads the metric list and its documentation from metricNames.ts", () => {
    expect(METRIC_NAMES.length).toBeGreaterThan(10);
    expect([...docs.keys()].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it("loads every infra/alerts/*.kql into a rule, and each loaded file exists", () => {
    const files = readdirSync(path.join(infraDir, "alerts")).filter((f) => f.endsWith(".kql")).sort();
    expect(rules.map((r) => r.file).sort()).toEqual(files);
    for (const rule of rules) expect(existsSync(path.join(infraDir, "alerts", rule.file))).toBe(true);
  });

  it.each(allQueries)("$name: every customMetrics read filters on metric names listed in metricNames.ts", ({ query }) => {
    for (const use of metricUses(query)) {
      expect(use.metrics.length).toBeGreaterThan(0);
      expect(use.metrics.filter((name) => !METRIC_NAMES.includes(name))).toEqual([]);
    }
    // No metric-looking string anywhere else in the query either (e.g. in a let or a union).
    const named = [...withoutComments(query).matchAll(/"(twin_reconciler[^"]*)"/g)].map((m) => m[1] ?? "");
    expect(named.filter((name) => !METRIC_NAMES.includes(name))).toEqual([]);
  });

  it.each(allQueries)("$name: filters only on attributes (and values) metricNames.ts documents for that metric", ({ query }) => {
    for (const use of metricUses(query)) {
      for (const attribute of use.attributes) {
        for (const metric of use.metrics) {
          const doc = docs.get(metric) ?? "";
          expect({ metric, key: attribute.key, documented: doc.includes(attribute.key) }).toEqual({ metric, key: attribute.key, documented: true });
          if (attribute.value !== undefined) {
            expect({ metric, value: attribute.value, documented: doc.includes(`\`${attribute.value}\``) }).toEqual({ metric, value: attribute.value, documented: true });
          }
        }
      }
    }
  });

  it("each rule's measure column and split-by columns are what its query summarizes", () => {
    for (const rule of rules) {
      const kql = withoutComments(rule.query);
      const summarize = /\|\s*summarize\s+([^\n]+)$/m.exec(kql.trim().split("\n").slice(-1)[0] ?? "")?.[1] ?? "";
      expect({ file: rule.file, measure: new RegExp(`^${rule.measure}\\s*=`).test(summarize) }).toEqual({ file: rule.file, measure: true });
      const by = /\bby\s+(.+)$/.exec(summarize)?.[1]?.split(",").map((s) => s.trim()) ?? [];
      expect({ file: rule.file, by }).toEqual({ file: rule.file, by: rule.dimensions });
    }
  });

  it("alerts on what the operator must hear about: event age > 5 min, dead letters, escalations, failing functions, overdue sync", () => {
    const byFile = new Map(rules.map((r) => [r.file, r]));
    const expectations: { file: string; metric: string | null; filter?: string; threshold: string }[] = [
      { file: "event-age.kql", metric: "twin_reconciler.event.age", threshold: "300" },
      { file: "dead-letters.kql", metric: "twin_reconciler.events", filter: "dead_lettered", threshold: "0" },
      { file: "escalations.kql", metric: "twin_reconciler.repushes", filter: "escalated", threshold: "0" },
      { file: "function-failures.kql", metric: null, threshold: "functionFailureThreshold - 1" },
      { file: "fleet-sync-overdue.kql", metric: "twin_reconciler.sync.last_complete_age", threshold: "fleetSyncOverdueHours * 3600" },
    ];
    for (const expected of expectations) {
      const rule = byFile.get(expected.file);
      expect(rule).toBeDefined();
      if (!rule) continue;
      expect(rule.threshold).toBe(expected.threshold);
      const uses = metricUses(rule.query);
      if (expected.metric === null) {
        // The Functions host's own invocation telemetry, not an app metric.
        expect(uses).toEqual([]);
        expect(withoutComments(rule.query)).toMatch(/^\s*requests\s*\n\|\s*where success == false/);
      } else {
        expect(uses.map((u) => u.metrics)).toEqual([[expected.metric]]);
        if (expected.filter) expect(uses[0]?.attributes).toContainEqual({ key: "outcome", value: expected.filter });
      }
    }
  });

  it("the workbook charts compliance, event age, events by outcome, re-push outcomes, dead letters and sync age", () => {
    expect(workbook.version).toBe("Notebook/1.0");
    const charted = new Set(workbookQueries.flatMap((q) => metricUses(q.query).flatMap((u) => u.metrics)));
    for (const metric of [
      "twin_reconciler.property_records",
      "twin_reconciler.event.age",
      "twin_reconciler.events",
      "twin_reconciler.repushes",
      "twin_reconciler.dead_letters",
      "twin_reconciler.sync.last_complete_age",
    ]) {
      expect({ metric, charted: charted.has(metric) }).toEqual({ metric, charted: true });
    }
  });
});

describe("infra wiring of alerts and workbook", () => {
  it("workbook.bicep loads workbook.json and puts the Application Insights ID where the JSON's placeholder is", () => {
    const bicep = readBicep(path.join("modules", "workbook.bicep"));
    expect(workbook.fallbackResourceIds).toEqual(["__APP_INSIGHTS_RESOURCE_ID__"]);
    expect(bicep).toMatch(/replace\(loadTextContent\('\.\.\/workbook\.json'\), '__APP_INSIGHTS_RESOURCE_ID__', appInsightsId\)/);
    expect(bicep).toMatch(/serializedData: serializedData/);
  });

  it("main.bicep points both at Application Insights, and the action group exists only with an e-mail", () => {
    const main = readBicep("main.bicep");
    expect(main).toMatch(/module alerts '\.\/modules\/alerts\.bicep'[\s\S]*?appInsightsId: appInsights\.outputs\.resourceId[\s\S]*?alertEmail: alertEmail/);
    expect(main).toMatch(/module workbook '\.\/modules\/workbook\.bicep'[\s\S]*?appInsightsId: appInsights\.outputs\.resourceId/);
    expect(alertsBicep).toMatch(/resource actionGroup 'Microsoft\.Insights\/actionGroups@[^']+' = if \(!empty\(alertEmail\)\)/);
    expect(alertsBicep).toMatch(/actionGroups: empty\(alertEmail\) \? \[\] : \[\s*actionGroup\.id\s*\]/);
  });
});
