// Lint, plus the architecture rule: the pure core imports no I/O.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const ioModules = ["pg", "pg-*", "@electric-sql/*", "azure-*", "@azure/*", "@opentelemetry/*", "fs", "fs/*", "node:fs", "node:fs/*",
  "net", "node:net", "http", "node:http", "https", "node:https", "child_process", "node:child_process",
  "dgram", "node:dgram", "tls", "node:tls", "worker_threads", "node:worker_threads"];

export default tseslint.config(
  { ignores: ["node_modules/**", "dist/**", ".data/**", "coverage/**", "test-results/**", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
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
        ],
      }],
    },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
