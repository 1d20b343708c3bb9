#!/usr/bin/env node
// npm run infra:build — compiles infra/main.bicep with a Bicep CLI when one is installed
// (`bicep build`, else `az bicep build`). Where there is none it says so and exits 0 without
// claiming anything compiled: the structural checks in test/infra/ are all that ran then.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const root = path.join(__dirname, "..");
const entry = path.join("infra", "main.bicep");
const outDir = path.join(root, "dist", "infra");

function onPath(command, args) {
  const probe = spawnSync(command, args, { cwd: root, stdio: "ignore" });
  return !probe.error && probe.status === 0;
}

function run(command, args) {
  console.log(`> ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.error) {
    console.error(`${command} could not run: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

let status;
if (onPath("bicep", ["--version"])) {
  status = run("bicep", ["build", entry, "--outdir", outDir]);
} else if (onPath("az", ["bicep", "version"])) {
  status = run("az", ["bicep", "build", "--file", entry, "--outdir", outDir]);
} else {
  console.log("infra:build: no Bicep CLI found (neither `bicep` nor `az bicep` on PATH).");
  console.log("infra:build: nothing was compiled; infra/*.bicep is NOT validated by this run.");
  console.log("infra:build: install one (https://aka.ms/bicep-install) and run again to compile.");
  process.exit(0);
}
if (status === 0) console.log(`infra:build: compiled ${entry} to ${path.relative(root, outDir)}/main.json`);
process.exit(status);
