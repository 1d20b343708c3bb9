#!/usr/bin/env node
// The twin-reconciler command line (`twin-reconciler replay FILE.jsonl …`): the compiled build when
// present (npm run build), else the TypeScript sources through swc.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const compiled = path.join(__dirname, "..", "dist", "local", "cli", "main.js");
let cli;
if (fs.existsSync(compiled)) cli = require(compiled);
else {
  require("../local/register");
  cli = require("../local/cli/main.ts");
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is written by now: a network client that will not let go (an AMQP connection whose
    // close is never answered) must not keep the process alive.
    setTimeout(() => process.exit(code), 5000).unref();
  },
  (error) => { console.error(`twin-reconciler: ${error && error.message}`); process.exitCode = 1; },
);
