import { ConfigError } from "../shared/config";
import { PolicyError } from "../shared/policy/Policy";
import { redact } from "../shared/redact";
import { StoreInUseError } from "../shared/store/openPglite";
import { LocalSettingsError } from "./host/appSettings";

/** A problem with the command line: one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** What a command prints when it cannot start, and its exit code. */
export interface StartupFailure {
  /** One line each, without a trailing newline. */
  lines: string[];
  /** 2: a setting, option or policy the user must fix; 1: anything else. */
  exitCode: 1 | 2;
}

/**
 * Turns a failure to start into lines for a terminal: one per bad setting (ConfigError), one for a bad
 * policy, one for a malformed local.settings.json, one for a data folder in use — none with a stack
 * trace, which would bury the one thing to fix.
 * Anything unforeseen keeps its stack.
 */
export function startupFailure(error: unknown): StartupFailure {
  if (error instanceof ConfigError) {
    return { lines: error.issues.map((i) => redact(`invalid setting ${i.setting}: ${i.problem}`)), exitCode: 2 };
  }
  if (error instanceof PolicyError || error instanceof LocalSettingsError) return { lines: [oneLine(error.message)], exitCode: 2 };
  if (error instanceof StoreInUseError) return { lines: [oneLine(error.message)], exitCode: 1 };
  if (error instanceof UsageError || isArgumentError(error)) return { lines: [oneLine(error.message)], exitCode: 2 };
  return { lines: [redact(error instanceof Error ? (error.stack ?? error.message) : String(error))], exitCode: 1 };
}

/** node:util parseArgs's errors (unknown option, missing value…). */
function isArgumentError(error: unknown): error is Error {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string" && (error as NodeJS.ErrnoException).code!.startsWith("ERR_PARSE_ARGS_");
}

function oneLine(text: string): string {
  return redact(text).replace(/\s*\n\s*/g, " ");
}
