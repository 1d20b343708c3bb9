import { readdirSync } from "node:fs";
import Module from "node:module";
import path from "node:path";
import { toFunctionRegistration, isRecord, type FunctionRegistration } from "./functionRegistration";
import { toProgrammingModel, type ProgrammingModel } from "./invokeFunction";

const corePath = path.join(__dirname, "functionsCore.js");

interface CoreState {
  functions: Map<string, unknown>;
  programmingModel: unknown;
}

/** Which functions each module registered (a module registers only when first required). */
const registeredBy = new Map<string, string[]>();

/**
 * The `@azure/functions-core` stand-in, made resolvable first if nothing did so yet (jest maps it
 * in jest.config.js, local/register.js for `node bin/…`). It must resolve before the first `app.*`
 * call: @azure/functions looks the core up once and caches it.
 */
export function functionsCoreState(): CoreState {
  let core: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- resolved at run time, after the stand-in is in place
    core = require("@azure/functions-core");
  } catch {
    const moduleWithResolver = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
    const resolve = moduleWithResolver._resolveFilename;
    moduleWithResolver._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
      return request === "@azure/functions-core" ? corePath : resolve.call(this, request, ...rest);
    };
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- resolved at run time, after the stand-in is in place
    core = require("@azure/functions-core");
  }
  if (!isRecord(core) || !isRecord(core.__state) || !(core.__state.functions instanceof Map)) {
    throw new Error("@azure/functions-core does not resolve to local/host/functionsCore.js; see jest.config.js and local/register.js");
  }
  return core.__state as unknown as CoreState;
}

/** The function modules of the app: every `functions/*.ts` (or `*.js` when running compiled code). */
export function defaultFunctionModules(): string[] {
  const dir = path.resolve(__dirname, "..", "..", "functions");
  const ext = path.extname(__filename) === ".ts" ? ".ts" : ".js";
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith(ext) && !n.endsWith(".d.ts") && !n.includes(".test."))
    .sort()
    .map((n) => path.join(dir, n));
}

export interface LoadedFunctions {
  /** Undefined only when nothing was registered. */
  programmingModel: ProgrammingModel | undefined;
  registrations: FunctionRegistration[];
}

/**
 * Requires each module (which runs its `app.*` calls) and returns what they registered. A module
 * that someone else required first registers nothing now; its functions are then found among
 * those no loaded module claims.
 */
export function loadFunctions(modulePaths: readonly string[]): LoadedFunctions {
  const state = functionsCoreState();
  const names = new Set<string>();
  let unattributed = false;
  for (const modulePath of modulePaths) {
    const resolved = path.resolve(modulePath);
    let registered = registeredBy.get(resolved);
    if (registered === undefined) {
      const before = new Set(state.functions.keys());
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- function modules register on require, as in the worker
      require(resolved);
      registered = [...state.functions.keys()].filter((n) => !before.has(n));
      registeredBy.set(resolved, registered);
    }
    if (registered.length === 0) unattributed = true;
    for (const n of registered) names.add(n);
  }
  if (unattributed) {
    const claimed = new Set([...registeredBy.values()].flat());
    for (const n of state.functions.keys()) if (!claimed.has(n)) names.add(n);
  }
  const registrations = [...names]
    .filter((name) => state.functions.has(name))
    .map((name) => toFunctionRegistration(name, state.functions.get(name)));
  const programmingModel = registrations.length > 0 ? toProgrammingModel(state.programmingModel) : undefined;
  return { programmingModel, registrations };
}
