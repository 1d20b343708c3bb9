#!/usr/bin/env node
// node scripts/stage-package.js [--no-install] — builds the Function App's deployment package in
// .azd-package/ (azure.yaml's `dist`; azd's prepackage hook runs this): `npm run build`, then every
// project file that .funcignore does not leave out (the same rules `func azure functionapp publish`
// applies), then `npm ci --omit=dev` inside the stage, so the package holds production dependencies
// only and your own node_modules (with the dev tools) is never pruned.
//
// .funcignore is read with gitignore's rules for the patterns it uses: `#` comments, `*` and `?`
// within a path segment, `**` across segments, a leading `/` anchors to the project root, a `/`
// elsewhere anchors too, a trailing `/` matches directories only. Negation (`!`) is refused rather
// than half-supported.
"use strict";
const { spawnSync } = require("node:child_process");
const { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } = require("node:fs");
const path = require("node:path");

const STAGE = ".azd-package";
/** Never copied, whatever .funcignore says: dependencies are installed fresh; VCS, azd state and the rules themselves stay out. */
const ALWAYS_SKIPPED = new Set(["node_modules", ".git", ".azure", ".funcignore", STAGE]);

function globToRegExp(glob) {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      out += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

/** The rules of an ignore file's text. */
function parseIgnore(text) {
  const rules = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("!")) throw new Error(`.funcignore: negated pattern "${line}" is not supported by scripts/stage-package.js`);
    let pattern = line;
    const dirOnly = pattern.endsWith("/");
    if (dirOnly) pattern = pattern.slice(0, -1);
    const anchored = pattern.includes("/");
    if (pattern.startsWith("/")) pattern = pattern.slice(1);
    rules.push({ line, dirOnly, anchored, regexp: globToRegExp(pattern) });
  }
  return rules;
}

/** Whether the path (relative, `/`-separated) itself matches a rule; its parents are checked by the walk. */
function isIgnored(rules, relPath, isDir) {
  const name = relPath.slice(relPath.lastIndexOf("/") + 1);
  return rules.some((rule) => (!rule.dirOnly || isDir) && rule.regexp.test(rule.anchored ? relPath : name));
}

/** Files of `root` the package holds (relative, `/`-separated, sorted). */
function stagedFiles(root) {
  const rules = parseIgnore(readFileSync(path.join(root, ".funcignore"), "utf8"));
  const files = [];
  const walk = (relDir) => {
    for (const entry of readdirSync(path.join(root, relDir), { withFileTypes: true })) {
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      if ((relDir === "" && ALWAYS_SKIPPED.has(entry.name)) || isIgnored(rules, rel, isDir)) continue;
      if (isDir) walk(rel);
      else if (entry.isFile()) files.push(rel);
    }
  };
  walk("");
  return files.sort();
}

function run(command, args, cwd) {
  console.log(`> ${command} ${args.join(" ")}${cwd ? `   (in ${cwd})` : ""}`);
  const result = spawnSync(command, args, { cwd, stdio: "inherit", shell: process.platform === "win32" });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${result.status}`);
}

/** Builds, copies the kept files to `root/.azd-package`, installs production dependencies there. */
function stage(root, { install = true, build = true } = {}) {
  const out = path.join(root, STAGE);
  if (build) run("npm", ["run", "build"], root);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const files = stagedFiles(root);
  for (const file of files) cpSync(path.join(root, file), path.join(out, file));
  if (install) run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], out);
  console.log(`stage-package: ${files.length} files${install ? " + production node_modules" : ""} in ${STAGE}/`);
  return files;
}

module.exports = { parseIgnore, isIgnored, stagedFiles, stage, STAGE };

if (require.main === module) {
  try {
    stage(path.join(__dirname, ".."), { install: !process.argv.includes("--no-install") });
  } catch (error) {
    console.error(`stage-package: ${error.message}`);
    process.exit(1);
  }
}
