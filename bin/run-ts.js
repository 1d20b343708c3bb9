#!/usr/bin/env node
// Usage: node bin/run-ts.js FILE.ts [args…] — runs a TypeScript entry point of this project.
"use strict";
require("../local/register");
const path = require("node:path");
const file = process.argv[2];
if (!file) { console.error("usage: run-ts FILE.ts [args…]"); process.exit(2); }
process.argv.splice(1, 2, path.resolve(file));
require(path.resolve(file));
