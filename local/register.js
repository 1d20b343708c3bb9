// Runs the project's TypeScript directly (bin/, npm start, benches) by compiling each .ts file with
// swc as Node requires it — no build step, no type-checking (`npm run typecheck` does that).
// In Azure the compiled dist/ is used instead (`npm run build`).
"use strict";
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");
const { transformSync } = require("@swc/core");

const corePath = path.join(__dirname, "host", "functionsCore.js");
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  // The worker provides '@azure/functions-core' in Azure; locally our stand-in captures registrations.
  if (request === "@azure/functions-core") return corePath;
  return resolve.call(this, request, ...rest);
};

require.extensions[".ts"] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, "utf8");
  const { code } = transformSync(source, {
    filename,
    jsc: { parser: { syntax: "typescript" }, target: "es2022" },
    module: { type: "commonjs" },
    sourceMaps: "inline",
  });
  module._compile(code, filename);
};
