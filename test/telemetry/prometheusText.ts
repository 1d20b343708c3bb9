/**
 * A small parser of the Prometheus text exposition format (0.0.4), written for the tests so they
 * read /api/metrics the way a scraper does, not through the exporter's own code. Handles what the
 * format allows in sample lines: `name{label="value",…} value [timestamp]`, escaped `\\`, `\"`, `\n`
 * in label values, and `# TYPE` lines. Not handled (not produced by the OpenTelemetry exporter):
 * exemplars, OpenMetrics `# EOF`.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` per metric family. */
  types: Map<string, string>;
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const [n, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!name) throw new Error(`line ${n + 1}: no metric name: ${line}`);
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === "{") {
      at++;
      while (line[at] !== "}") {
        const label = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
        if (!label) throw new Error(`line ${n + 1}: bad label at ${at}: ${line}`);
        at += label[0].length;
        let value = "";
        while (line[at] !== '"') {
          if (at >= line.length) throw new Error(`line ${n + 1}: unterminated label value`);
          if (line[at] === "\\") {
            const next = line[at + 1];
            value += next === "n" ? "\n" : next;
            at += 2;
          } else value += line[at++];
        }
        at++;
        labels[label[1]!] = value;
        if (line[at] === ",") at++;
      }
      at++;
    }
    const [valueText] = line.slice(at).trim().split(/\s+/);
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (valueText === undefined || (Number.isNaN(value) && valueText !== "NaN")) throw new Error(`line ${n + 1}: bad value: ${line}`);
    samples.push({ name, labels, value });
  }
  return { samples, types };
}

/** The samples named `name` whose labels include `labels`. */
export function samplesOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the matching samples' values (0 when none). */
export function sumOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(exposition, name, labels).reduce((n, s) => n + s.value, 0);
}

/** The Prometheus family name the exporter gives an OpenTelemetry metric (dots to underscores). */
export function promName(otelName: string): string {
  return otelName.replace(/[^a-zA-Z0-9_:]/g, "_");
}
