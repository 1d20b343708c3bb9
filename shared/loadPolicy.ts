import { readFileSync } from "node:fs";
import type { PolicySource } from "./config";
import { DEFAULT_POLICY, parsePolicy, parsePolicyText, PolicyError, type Policy } from "./policy/Policy";

/** Reads the configured policy (file, inline JSON or the default); throws PolicyError naming the bad field. */
export function loadPolicy(source: PolicySource): Policy {
  switch (source.kind) {
    case "default":
      return DEFAULT_POLICY;
    case "inline":
      return parsePolicy(source.json);
    case "file":
      return loadPolicyFile(source.path);
  }
}

export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new PolicyError(`cannot read policy file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return parsePolicyText(text);
  } catch (error) {
    throw new PolicyError(`${path}: ${(error as Error).message}`);
  }
}
