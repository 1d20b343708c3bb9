import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface DashboardPage {
  html: string;
  /** Allows only this page's own inline script and style, and fetches to this origin. */
  contentSecurityPolicy: string;
}

// The page's assets live in local/dashboard (index.html, dashboard.css, dashboard.js) and are inlined
// into one self-contained response: no external network, nothing else to serve. From the source tree
// (run-ts, jest) they are two folders up; from dist/shared/reports three (the build must copy
// local/dashboard next to dist, or the package must include it).
const candidates = [join(__dirname, "..", "..", "local", "dashboard"), join(__dirname, "..", "..", "..", "local", "dashboard")];

let cached: DashboardPage | undefined;

/** The dashboard page, built once per process. */
export function dashboardPage(): DashboardPage {
  if (cached) return cached;
  const dir = candidates.find((d) => existsSync(join(d, "index.html")));
  if (!dir) throw new Error(`Dashboard assets not found (looked in ${candidates.join(", ")}): deploy local/dashboard with the app.`);
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  const style = read("dashboard.css");
  const script = read("dashboard.js");
  const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
  const html = read("index.html")
    .replace("<!--STYLE-->", () => `<style>${style}</style>`)
    .replace("<!--SCRIPT-->", () => `<script>${script}</script>`);
  cached = {
    html,
    contentSecurityPolicy: [
      "default-src 'none'",
      `script-src ${hash(script)}`,
      `style-src ${hash(style)}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  };
  return cached;
}
