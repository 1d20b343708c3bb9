/**
 * Text-level reading of our own .bicep files — no Bicep compiler can be installed here
 * (toolchain.md §7), so the infra tests read the source. Assumptions, true of infra/ and kept so:
 *   - strings are single-quoted on one line ('…', `\'` escapes, `${…}` interpolation holding no
 *     quotes of its own); no ''' multi-line strings;
 *   - comments are `//` to end of line or `/* … *\/`;
 *   - a block we look up (`params: {`, `appSettings: [`) is opened on the line of its key.
 * `code(text)` blanks comments and string contents (keeping quotes, `${…}` interpolations and line
 * breaks), so brackets and identifiers can be counted without being fooled by text in strings or comments.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export const infraDir = path.join(__dirname, "..", "..", "infra");

/** Every .bicep file under infra/, relative to infra/. */
export function bicepFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".bicep")) found.push(path.relative(infraDir, full));
    }
  };
  walk(infraDir);
  return found.sort();
}

export function readBicep(relative: string): string {
  return readFileSync(path.join(infraDir, relative), "utf8");
}

/** The text with comments blanked and string contents replaced by spaces (same length, same lines). */
export function code(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? "";
    const next = text[i + 1] ?? "";
    if (c === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") {
        out += " ";
        i++;
      }
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === "'") {
      out += "'";
      i++;
      while (i < text.length && text[i] !== "'" && text[i] !== "\n") {
        if (text[i] === "\\") {
          out += " ";
          i++;
        } else if (text[i] === "$" && text[i + 1] === "{") {
          // Interpolations are code: keep `${expr}` as it is.
          out += "$";
          i++;
          let depth = 0;
          do {
            if (text[i] === "{") depth++;
            if (text[i] === "}") depth--;
            out += text[i];
            i++;
          } while (i < text.length && depth > 0 && text[i] !== "\n");
          continue;
        }
        out += " ";
        i++;
      }
      if (text[i] === "'") {
        out += "'";
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const PAIRS: Record<string, string> = { "{": "}", "[": "]", "(": ")" };

/** First unbalanced or mismatched bracket in `code(text)`, or null when all balance. */
export function bracketProblem(text: string): string | null {
  const stack: { char: string; line: number }[] = [];
  const src = code(text);
  let line = 1;
  for (const c of src) {
    if (c === "\n") line++;
    if (c in PAIRS) stack.push({ char: c, line });
    else if (c === "}" || c === "]" || c === ")") {
      const open = stack.pop();
      if (!open || PAIRS[open.char] !== c) return `unexpected '${c}' on line ${line}`;
    }
  }
  const open = stack.pop();
  return open ? `'${open.char}' opened on line ${open.line} is never closed` : null;
}

/**
 * The original text of the block opened by the first `{`/`[` at or after `from` in `text`,
 * brackets included (matched on `code(text)`).
 */
export function blockAt(text: string, from: number): string {
  const src = code(text);
  const start = src.slice(from).search(/[{[]/);
  if (start < 0) throw new Error(`no block after offset ${from}`);
  let depth = 0;
  for (let i = from + start; i < src.length; i++) {
    const c = src[i];
    if (c === "{" || c === "[") depth++;
    if (c === "}" || c === "]") depth--;
    if (depth === 0) return text.slice(from + start, i + 1);
  }
  throw new Error(`block at offset ${from + start} is never closed`);
}

/** Keys at the top level of an object block (`{ a: …, b: { c: … } }` → a, b). */
export function topLevelKeys(block: string): string[] {
  const src = code(block);
  const keys: string[] = [];
  const seen = new Set<number>();
  let depth = 0;
  const keyAt = /^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:/;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "{" || c === "[" || c === "(") depth++;
    if (c === "}" || c === "]" || c === ")") depth--;
    // A key starts a line (or follows a comma) at depth 1 of the block.
    if (depth === 1 && (c === "\n" || c === "," || c === "{")) {
      const match = keyAt.exec(src.slice(i + 1));
      const at = i + 1 + (match?.[1]?.length ?? 0);
      if (match?.[2] && !seen.has(at)) {
        seen.add(at);
        keys.push(match[2]);
      }
    }
  }
  return keys;
}

export interface BicepParam {
  name: string;
  hasDefault: boolean;
}

export function params(text: string): BicepParam[] {
  return [...code(text).matchAll(/^param\s+([A-Za-z_][A-Za-z0-9_]*)\s+([^\n]*)$/gm)].map((m) => ({
    name: m[1] ?? "",
    hasDefault: /\s=\s/.test(m[2] ?? ""),
  }));
}

export interface BicepModuleUse {
  symbol: string;
  path: string;
  /** Keys of its `params: { … }` block. */
  paramKeys: string[];
}

/** The `module x '<path>' = { params: { … } }` declarations of a file. */
export function modules(text: string): BicepModuleUse[] {
  const uses: BicepModuleUse[] = [];
  for (const m of text.matchAll(/^module\s+([A-Za-z_][A-Za-z0-9_]*)\s+'([^']+)'\s*=\s*/gm)) {
    const body = blockAt(text, (m.index ?? 0) + m[0].length);
    const paramsAt = code(body).search(/\bparams\s*:\s*\{/);
    const paramKeys = paramsAt < 0 ? [] : topLevelKeys(blockAt(body, paramsAt));
    uses.push({ symbol: m[1] ?? "", path: m[2] ?? "", paramKeys });
  }
  return uses;
}

/** Names of the `{ name: '…', value: … }` entries of the first `appSettings: [` block of `text`. */
export function appSettingNames(text: string): { names: string[]; entries: number } {
  const at = code(text).search(/\bappSettings\s*:\s*\[/);
  if (at < 0) throw new Error("no `appSettings: [` block");
  const block = blockAt(text, at);
  const names = [...block.matchAll(/\{\s*name:\s*'([^'$]+)'/g)].map((m) => m[1] ?? "");
  // Every entry must name its setting with a literal, or the test would miss it.
  let entries = 0;
  let depth = 0;
  for (const c of code(block)) {
    if (c === "{" || c === "[") {
      if (depth === 1 && c === "{") entries++;
      depth++;
    }
    if (c === "}" || c === "]") depth--;
  }
  return { names, entries };
}
