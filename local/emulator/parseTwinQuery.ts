import type { Json } from "../../shared/twin/json";
import { hubErrors } from "./IotHubError";

/**
 * The subset of IoT Hub's twin query language the emulator runs (iothub-facts §7):
 * `SELECT [TOP n] * | path [AS alias], … | COUNT() [AS alias] FROM devices | devices.modules [WHERE cond]`
 * with `= != <> < > <= >=`, `AND OR NOT`, parentheses, `IN`/`NIN [...]`, `IS_DEFINED(path)`, and
 * string/number/true/false/null literals. Anything else (GROUP BY, arithmetic, other functions,
 * devices.jobs) is refused with 400 `BadRequest` naming what is unsupported.
 */
export interface TwinQuery {
  source: "devices" | "modules";
  top?: number;
  select: { kind: "all" } | { kind: "fields"; fields: Array<{ path: string[]; alias: string }> } | { kind: "count"; alias: string };
  where?: QueryExpression;
}

export type ComparisonOperator = "=" | "!=" | "<" | ">" | "<=" | ">=";

export type QueryExpression =
  | { kind: "literal"; value: Json }
  | { kind: "path"; path: string[] }
  | { kind: "compare"; op: ComparisonOperator; left: QueryExpression; right: QueryExpression }
  | { kind: "in"; negated: boolean; operand: QueryExpression; values: Json[] }
  | { kind: "and" | "or"; left: QueryExpression; right: QueryExpression }
  | { kind: "not"; operand: QueryExpression }
  | { kind: "isDefined"; path: string[] };

export const maxQueryLength = 8192;

type Token =
  | { type: "word"; text: string; pos: number }
  | { type: "string"; text: string; pos: number }
  | { type: "number"; value: number; pos: number }
  | { type: "punct"; text: string; pos: number }
  | { type: "end"; pos: number };

// Root fields are matched case-insensitively and answered in IoT Hub's camelCase.
const rootFields = [
  "deviceId", "moduleId", "etag", "deviceEtag", "status", "statusReason", "statusUpdateTime", "connectionState",
  "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint", "version", "tags",
  "properties", "capabilities", "modelId", "deviceScope", "parentScopes",
];

export function parseTwinQuery(sql: string): TwinQuery {
  if (sql.length > maxQueryLength) throw refuse(`the query is longer than ${maxQueryLength} characters`);
  return new Parser(tokenize(sql)).query();
}

function refuse(reason: string): Error {
  return hubErrors.badRequest(`Invalid query: ${reason}`);
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    const pos = i;
    if (c === "'" || c === '"') {
      let text = "";
      i += 1;
      for (;;) {
        if (i >= sql.length) throw refuse(`unterminated string starting at position ${pos}`);
        const ch = sql[i]!;
        if (ch === "\\" && i + 1 < sql.length) {
          text += sql[i + 1]!;
          i += 2;
        } else if (ch === c) {
          i += 1;
          break;
        } else {
          text += ch;
          i += 1;
        }
      }
      tokens.push({ type: "string", text, pos });
      continue;
    }
    const hex = /^0x[0-9a-fA-F]+/.exec(sql.slice(i));
    const num = hex ?? /^\d+(\.\d+)?([eE][+-]?\d+)?/.exec(sql.slice(i));
    if (num) {
      tokens.push({ type: "number", value: Number(num[0]), pos });
      i += num[0].length;
      continue;
    }
    const word = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(sql.slice(i));
    if (word) {
      tokens.push({ type: "word", text: word[0], pos });
      i += word[0].length;
      continue;
    }
    const punct = /^(<=|>=|<>|!=|[()[\],.*=<>+\-/%])/.exec(sql.slice(i));
    if (punct) {
      tokens.push({ type: "punct", text: punct[0], pos });
      i += punct[0].length;
      continue;
    }
    throw refuse(`unexpected character '${c}' at position ${pos}`);
  }
  tokens.push({ type: "end", pos: sql.length });
  return tokens;
}

class Parser {
  private i = 0;

  constructor(private readonly tokens: Token[]) {}

  query(): TwinQuery {
    this.expectKeyword("SELECT");
    let top: number | undefined;
    if (this.acceptKeyword("TOP")) {
      const t = this.next();
      if (t.type !== "number" || !Number.isInteger(t.value) || t.value < 0) throw refuse("TOP needs a non-negative integer");
      top = t.value;
    }
    const select = this.selectList();
    this.expectKeyword("FROM");
    const source = this.source();
    let where: QueryExpression | undefined;
    if (this.acceptKeyword("WHERE")) where = this.orExpression();
    const t = this.peek();
    if (t.type !== "end") {
      if (t.type === "word" && ["GROUP", "ORDER"].includes(t.text.toUpperCase())) {
        throw refuse(`${t.text.toUpperCase()} BY is not supported by the emulator`);
      }
      throw refuse(`unexpected '${describe(t)}' at position ${t.pos}`);
    }
    return { source, select, ...(top === undefined ? {} : { top }), ...(where === undefined ? {} : { where }) };
  }

  private selectList(): TwinQuery["select"] {
    if (this.acceptPunct("*")) return { kind: "all" };
    const t = this.peek();
    if (t.type === "word" && this.peekAt(1).type === "punct" && (this.peekAt(1) as { text: string }).text === "(") {
      const name = t.text.toUpperCase();
      if (name !== "COUNT") throw refuse(`aggregate or function ${t.text}() is not supported in SELECT (only COUNT())`);
      this.next();
      this.expectPunct("(");
      this.expectPunct(")");
      const alias = this.acceptKeyword("AS") ? this.identifier() : "$1";
      if (this.peekPunct(",")) throw refuse("COUNT() cannot be combined with other projections");
      return { kind: "count", alias };
    }
    const fields: Array<{ path: string[]; alias: string }> = [];
    do {
      const path = this.path();
      const alias = this.acceptKeyword("AS") ? this.identifier() : path[path.length - 1]!;
      fields.push({ path, alias });
    } while (this.acceptPunct(","));
    return { kind: "fields", fields };
  }

  private source(): TwinQuery["source"] {
    const name = this.identifier();
    if (name.toLowerCase() !== "devices") throw refuse(`FROM ${name} is not supported (use devices or devices.modules)`);
    if (this.acceptPunct(".")) {
      const sub = this.identifier().toLowerCase();
      if (sub === "modules") return "modules";
      throw refuse(`FROM devices.${sub} is not supported by the emulator`);
    }
    return "devices";
  }

  private orExpression(): QueryExpression {
    let left = this.andExpression();
    while (this.acceptKeyword("OR")) left = { kind: "or", left, right: this.andExpression() };
    return left;
  }

  private andExpression(): QueryExpression {
    let left = this.notExpression();
    while (this.acceptKeyword("AND")) left = { kind: "and", left, right: this.notExpression() };
    return left;
  }

  private notExpression(): QueryExpression {
    if (this.acceptKeyword("NOT")) return { kind: "not", operand: this.notExpression() };
    return this.comparison();
  }

  private comparison(): QueryExpression {
    const left = this.operand();
    const t = this.peek();
    if (t.type === "punct" && ["=", "!=", "<>", "<", ">", "<=", ">="].includes(t.text)) {
      this.next();
      const op = (t.text === "<>" ? "!=" : t.text) as ComparisonOperator;
      return { kind: "compare", op, left, right: this.operand() };
    }
    if (t.type === "punct" && ["+", "-", "*", "/", "%"].includes(t.text)) {
      throw refuse(`arithmetic operator '${t.text}' is not supported by the emulator`);
    }
    if (this.acceptKeyword("IN")) return { kind: "in", negated: false, operand: left, values: this.arrayConstant() };
    if (this.acceptKeyword("NIN")) return { kind: "in", negated: true, operand: left, values: this.arrayConstant() };
    return left;
  }

  private operand(): QueryExpression {
    const t = this.peek();
    if (t.type === "punct" && t.text === "(") {
      this.next();
      const inner = this.orExpression();
      this.expectPunct(")");
      return inner;
    }
    if (t.type === "word" && this.peekAt(1).type === "punct" && (this.peekAt(1) as { text: string }).text === "(") {
      if (t.text.toUpperCase() !== "IS_DEFINED") throw refuse(`function ${t.text}() is not supported in twin queries (only IS_DEFINED)`);
      this.next();
      this.expectPunct("(");
      const path = this.path();
      this.expectPunct(")");
      return { kind: "isDefined", path };
    }
    const literal = this.tryLiteral();
    if (literal !== undefined) return { kind: "literal", value: literal.value };
    if (t.type === "word") return { kind: "path", path: this.path() };
    throw refuse(`unexpected '${describe(t)}' at position ${t.pos}`);
  }

  private tryLiteral(): { value: Json } | undefined {
    const t = this.peek();
    if (t.type === "string") {
      this.next();
      return { value: t.text };
    }
    if (t.type === "number") {
      this.next();
      return { value: t.value };
    }
    if (t.type === "punct" && t.text === "-" && this.peekAt(1).type === "number") {
      this.next();
      const n = this.next() as { value: number };
      return { value: -n.value };
    }
    if (t.type === "word") {
      const upper = t.text.toUpperCase();
      if (upper === "TRUE" || upper === "FALSE" || upper === "NULL") {
        this.next();
        return { value: upper === "NULL" ? null : upper === "TRUE" };
      }
    }
    return undefined;
  }

  private arrayConstant(): Json[] {
    this.expectPunct("[");
    const values: Json[] = [];
    if (this.acceptPunct("]")) return values;
    do {
      const literal = this.tryLiteral();
      if (literal === undefined) throw refuse(`IN/NIN need an array of constants, found '${describe(this.peek())}'`);
      values.push(literal.value);
    } while (this.acceptPunct(","));
    this.expectPunct("]");
    return values;
  }

  private path(): string[] {
    const segments = [this.identifier()];
    while (this.acceptPunct(".")) segments.push(this.identifier());
    const root = rootFields.find((f) => f.toLowerCase() === segments[0]!.toLowerCase());
    if (root !== undefined) segments[0] = root;
    if (root === "properties" && segments[1] !== undefined && ["desired", "reported"].includes(segments[1].toLowerCase())) {
      segments[1] = segments[1].toLowerCase();
    }
    return segments;
  }

  private identifier(): string {
    const t = this.next();
    if (t.type !== "word") throw refuse(`expected a name at position ${t.pos}, found '${describe(t)}'`);
    return t.text;
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private peekAt(offset: number): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.tokens[this.i]!;
    if (t.type !== "end") this.i += 1;
    return t;
  }

  private peekPunct(text: string): boolean {
    const t = this.peek();
    return t.type === "punct" && t.text === text;
  }

  private acceptPunct(text: string): boolean {
    if (!this.peekPunct(text)) return false;
    this.next();
    return true;
  }

  private expectPunct(text: string): void {
    if (!this.acceptPunct(text)) {
      const t = this.peek();
      throw refuse(`expected '${text}' at position ${t.pos}, found '${describe(t)}'`);
    }
  }

  private acceptKeyword(keyword: string): boolean {
    const t = this.peek();
    if (t.type === "word" && t.text.toUpperCase() === keyword) {
      this.next();
      return true;
    }
    return false;
  }

  private expectKeyword(keyword: string): void {
    if (!this.acceptKeyword(keyword)) {
      const t = this.peek();
      throw refuse(`expected ${keyword} at position ${t.pos}, found '${describe(t)}'`);
    }
  }
}

function describe(t: Token): string {
  switch (t.type) {
    case "end":
      return "end of query";
    case "number":
      return String(t.value);
    default:
      return t.text;
  }
}
