#!/usr/bin/env node
// node scripts/package-size.js — what the Azure package (scripts/stage-package.js, azure.yaml) holds,
// measured from this checkout without installing anything: the project files .funcignore keeps
// (run `npm run build` first: dist/ is part of them) plus the package directories of the production
// dependencies (`npm ls --omit=dev --all --parseable`, each without its nested node_modules, which
// are listed on their own). Prints files and bytes, uncompressed and deflated (about the zip size).
"use strict";
const { execFileSync } = require("node:child_process");
const { existsSync, lstatSync, readdirSync, readFileSync } = require("node:fs");
const path = require("node:path");
const { deflateRawSync } = require("node:zlib");
const { stagedFiles } = require("./stage-package");

const root = path.join(__dirname, "..");

function measure(files) {
  let bytes = 0;
  let deflated = 0;
  for (const file of files) {
    const data = readFileSync(file);
    bytes += data.length;
    deflated += Math.min(data.length, deflateRawSync(data).length);
  }
  return { files: files.length, bytes, deflated };
}

/** Regular files under dir, leaving out its own node_modules (nested packages are listed separately). */
function packageFiles(dir) {
  const out = [];
  const walk = (d, top) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (top && entry.name === "node_modules") continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full, false);
      else if (entry.isFile()) out.push(full);
    }
  };
  walk(dir, true);
  return out;
}

if (!existsSync(path.join(root, "dist", "functions"))) {
  console.error("package-size: run `npm run build` first (dist/ is part of the package)");
  process.exit(1);
}
const app = measure(stagedFiles(root).map((f) => path.join(root, f)));
const listed = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 })
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && path.resolve(line) !== root && !lstatSync(line).isSymbolicLink());
const dirs = [...new Set(listed)];
const biggest = dirs
  .map((dir) => ({ name: path.relative(root, dir).replace(/^(\.\.\/)*/, ""), ...measure(packageFiles(dir)) }))
  .sort((a, b) => b.bytes - a.bytes);
const deps = biggest.reduce((sum, p) => ({ files: sum.files + p.files, bytes: sum.bytes + p.bytes, deflated: sum.deflated + p.deflated }), { files: 0, bytes: 0, deflated: 0 });
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(`app files:    ${app.files} files, ${mb(app.bytes)} (deflated ${mb(app.deflated)})`);
console.log(`dependencies: ${dirs.length} packages, ${deps.files} files, ${mb(deps.bytes)} (deflated ${mb(deps.deflated)})`);
console.log(`total:        ${app.files + deps.files} files, ${mb(app.bytes + deps.bytes)} (deflated ${mb(app.deflated + deps.deflated)})`);
console.log("largest dependencies:");
for (const p of biggest.slice(0, 8)) console.log(`  ${p.name}: ${mb(p.bytes)}`);
