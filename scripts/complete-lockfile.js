#!/usr/bin/env node
// Completes package-lock.json with the platform-specific optional packages this machine's registry
// does not serve (e.g. @swc/core-darwin-arm64: 404 here). npm 11 leaves them out of a lock it writes,
// then `npm ci` refuses that lock as out of sync ("Missing: @swc/core-darwin-arm64@ from lock file").
// Each is recorded as an optional entry at the version its parent asks for; npm ci skips it on a
// platform it does not fit (or when it cannot be fetched), exactly as it does for a complete lock.
// Run after `npm install` changes the lock: `node scripts/complete-lockfile.js`.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const file = path.join(__dirname, "..", "package-lock.json");
const lock = JSON.parse(fs.readFileSync(file, "utf8"));
const packages = lock.packages;
let added = 0;
for (const [location, entry] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = location === "" ? "" : `${location}/`;
    const nested = `${base}node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (packages[nested] || packages[hoisted]) continue;
    if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(range)) continue; // only exact pins (platform binaries are pinned)
    packages[hoisted] = { version: range, ...(entry.dev ? { dev: true } : {}), optional: true };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
lock.packages = sorted;
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entries`);
