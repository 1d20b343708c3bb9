// Lint, plus the architecture rule: the pure core imports no I/O.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const ioModules = ["pg", "pg-*", "@electric-sql/*", "azure-*", "@azure/*", "@opentelemetry/*", "fs", "fs/*", "node:fs", "node:fs/*",
  "net", "node:net", "http", "node:http", "https", "node:https", "child_process", "node:child_process",
  "dgram", "node:dgram", "tls", "node:tls", "worker_threads", "node:worker_threads"];

// A package only through its public entry points: never its private internals (dist/, lib/, src/),
// which move between patch releases. ajv documents "ajv/dist/2019" and "ajv/dist/2020" as its
// draft-2019 and draft-2020 entry points, so those two are allowed.
const deepImport = {
  regex: "^(?!ajv/dist/20(19|20)$)(@[^/]+/)?[^./@][^/]*/(dist|lib|src)(/|$)",
  message: "Import the package's public entry point, not its private internals (dist/, lib/, src/).",
};
const deepImportRule = ["error", { patterns: [deepImport] }];

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**", ".data/**", "coverage/**", "test-results/**", "**/*.js", "**/*.mjs", "**/*.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      "no-restricted-imports": deepImportRule,
    },
  },
  {
    // Pure folders: twin model, event decoding, policy and compliance evaluation take data and return data.
    files: ["shared/twin/**/*.ts", "shared/events/**/*.ts", "shared/policy/**/*.ts", "shared/compliance/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ioModules, message: "The pure core must not import I/O modules (see ARCHITECTURE.md: pure folders)." },
          { group: ["**/store", "**/store/*", "**/hub", "**/hub/*", "**/functions/*", "**/local/*"], message: "The pure core must not import store, hub, functions or local code." },
          deepImport,
        ],
      }],
    },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
