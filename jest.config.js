/** Jest runs TypeScript through swc (no type-checking: `npm run typecheck` does that as its own step). */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  moduleNameMapper: { "^@azure/functions-core$": "<rootDir>/local/host/functionsCore.js" },
  transform: {
    "^.+\\.(t|j)sx?$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  testTimeout: 60000,
};
