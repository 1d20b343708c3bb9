// After tsc: copy what the compiled app reads at run time but tsc does not emit (SQL migrations).
"use strict";
const { cpSync } = require("node:fs");
const { join } = require("node:path");
const root = join(__dirname, "..");
cpSync(join(root, "shared", "store", "migrations"), join(root, "dist", "shared", "store", "migrations"), { recursive: true });
