import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { useStore } from "../../shared/reports/getStore";
import type { ComplianceState } from "../../shared/reports/complianceStates";
import type { Database } from "../../shared/store/Database";
import { complianceFleet } from "./complianceFixture";
import { openTestPglite } from "../support/testDatabases";
import { seedDevices, seedHistory, type SeedDevice, type SeedHistory } from "./seedCompliance";

// Waits poll from Node through locators: the page's CSP forbids eval, which string page functions need
// (and this project's tsconfig has no DOM lib for function ones).
// The dashboard in a real browser (Debian's chromium), served by the local functions host from a
// seeded PGlite store. Screenshots go to test-results/ for a human look.
const chromiumPath = "/usr/bin/chromium";
const resultsDir = path.resolve(__dirname, "..", "..", "test-results");
const describeWithChromium = existsSync(chromiumPath) || process.env.CI ? describe : describe.skip;
if (!existsSync(chromiumPath)) console.warn(`dashboard tests skipped: ${chromiumPath} is missing (apt-get install -y --no-install-recommends chromium)`);

/** A fleet that looks like one: the fixture's six twins plus 60 sensors across sites and properties. */
function screenshotFleet(now: number): { devices: SeedDevice[]; history: SeedHistory[] } {
  const fleet = complianceFleet(now);
  const sites = ["berlin", "paris", "oslo", "lyon"];
  const paths = ["firmware.version", "telemetry.interval", "network.apn", "display.brightness", "thermostat.setpoint"];
  const pick = (i: number, p: number): ComplianceState => {
    const h = (i * 37 + p * 53) % 100;
    return h < 91 ? "compliant" : h < 94 ? "pending" : h < 95 ? "drifted" : h < 97 ? "stale" : h < 99 ? "failed" : "escalated";
  };
  const rank: ComplianceState[] = ["compliant", "pending", "drifted", "stale", "failed", "escalated"];
  for (let i = 1; i <= 60; i++) {
    const deviceId = `sensor-${String(i).padStart(3, "0")}`;
    const records = paths.map((p, k) => {
      const state = pick(i, k);
      const since = now - ((i * 977 + k * 613) % 20_000) * 1000;
      return { path: p, state, desired: k === 0 ? "3.2.1" : 30 + k, reported: state === "compliant" ? (k === 0 ? "3.2.1" : 30 + k) : k === 0 ? "3.1.9" : 10, desiredSince: new Date(since).toISOString(), staleAt: new Date(since + (state === "stale" ? -1 : 36_000_000)).toISOString() };
    });
    const worst = records.reduce<ComplianceState>((w, r) => (rank.indexOf(r.state) > rank.indexOf(w) ? r.state : w), "compliant");
    const stored = worst === "stale" ? "pending" : worst;
    fleet.devices.push({
      deviceId,
      state: stored,
      stateSince: new Date(now - i * 60_000).toISOString(),
      staleAt: worst === "stale" ? new Date(now - 1000).toISOString() : null,
      tags: { site: sites[i % sites.length], floor: i % 6 },
      records: records.map((r) => (r.state === "stale" ? { ...r, state: "pending" as const, staleAt: new Date(now - 1000).toISOString() } : r)),
    });
    records.forEach((r, k) => {
      if (r.state === "compliant") {
        fleet.history.push({ deviceId, path: r.path, fromState: "pending", toState: "compliant", at: new Date(Date.parse(r.desiredSince) + (40 + ((i * 7 + k * 13) % 600)) * 1000).toISOString() });
      }
    });
  }
  return fleet;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeWithChromium("compliance dashboard in a browser", () => {
  let db: Database;
  let host: LocalHost;
  let browser: BrowserContext;
  let userDataDir: string;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(resultsDir, { recursive: true });
    db = await openTestPglite();
    const fleet = screenshotFleet(Date.now());
    await seedDevices(db, fleet.devices);
    await seedHistory(db, fleet.history);
    useStore(db);
    await db.query("INSERT INTO dead_letters (received_at, reason, raw) VALUES (now(), 'seeded 1', '{}'), (now(), 'seeded 2', '{\"n\": 2}')");
    host = await startLocalHost({
      modules: ["complianceApi.ts", "metricsApi.ts"].map((f) => path.resolve(__dirname, "../../functions", f)),
      port: 0,
      scheduleTimers: false,
      log: () => undefined,
    });
    userDataDir = mkdtempSync(path.join(tmpdir(), "dashboard-chromium-"));
    // A fresh profile per run (playwright passes it to chromium as --user-data-dir).
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1440, height: 1000 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await host?.stop();
    useStore(undefined);
    await db?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function openDashboard(colorScheme: "light" | "dark" = "light"): Promise<Page> {
    const page = await browser.newPage();
    await page.emulateMedia({ colorScheme });
    page.on("console", (m) => (m.type() === "error" ? errors.push(m.text()) : undefined));
    page.on("pageerror", (e) => errors.push(e.message));
    // Nothing but this host: any other request would be a dependency on the network.
    page.on("request", (r) => (r.url().startsWith(host.url.replace(/\/api$/, "")) ? undefined : errors.push(`external request ${r.url()}`)));
    await page.goto(`${host.url}/dashboard`);
    await until("the summary", async () => (await page.locator('[data-testid="kpi-devices"]').textContent()) !== "–");
    await page.waitForSelector('[data-testid="device-link"]');
    return page;
  }

  async function api<T>(route: string): Promise<T> {
    const res = await fetch(`${host.url}/${route}`);
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  }

  it("shows the same numbers as the summary API", async () => {
    const page = await openDashboard();
    const summary = await api<{ devices: number; byState: Record<string, number>; byProperty: { path: string }[]; timeToCompliance: { count: number } }>("compliance/summary");
    const text = (selector: string) => page.locator(selector).first().textContent();
    expect(await text('[data-testid="kpi-devices"]')).toBe(summary.devices.toLocaleString("en-US"));
    for (const [state, n] of Object.entries(summary.byState)) expect(await text(`[data-testid="state-count-${state}"]`)).toBe(n.toLocaleString("en-US"));
    expect(await text('[data-testid="ttc-count"]')).toBe(summary.timeToCompliance.count.toLocaleString("en-US"));
    expect((await page.locator("#props tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-path")))).sort()).toEqual(summary.byProperty.map((p) => p.path).sort());
    await page.screenshot({ path: path.join(resultsDir, "dashboard.png"), fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });

  it("shows the pipeline figures of GET /api/metrics: events, dead letters, re-push outcomes", async () => {
    const page = await openDashboard();
    await until("the pipeline bar", async () => (await page.locator('[data-testid="metrics-dead-letters"]').textContent()) !== "–");
    const text = (id: string) => page.locator(`[data-testid="${id}"]`).textContent();
    expect(await text("metrics-dead-letters")).toBe("2");
    expect(await text("metrics-events")).toBe("0 since start: 0 applied, 0 duplicate, 0 ignored, 0 dead-lettered");
    expect(await text("metrics-repush")).toBe("0 pushed · 0 resolved · 0 412 · 0 429 · 0 404 · 0 escalated · 0 failed");
    await page.close();
  });

  it("follows a device link to the device's detail and history", async () => {
    const page = await openDashboard();
    await page.fill("#search", "dev-d");
    await until("the search result", async () => (await page.locator('[data-testid="device-link"]').count()) === 1);
    await page.click('[data-testid="device-link"]');
    expect(new URL(page.url()).hash).toBe("#device=dev-d");
    await until("the detail", async () => (await page.locator("#detail-title").textContent()) === "dev-d");
    const detail = await api<{ properties: { path: string }[]; history: unknown[] }>("compliance/devices/dev-d");
    await until("the history", async () => (await page.locator("#detail-history li").count()) === detail.history.length);
    expect(await page.locator("#detail-records tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-path")))).toEqual(detail.properties.map((p) => p.path));
    expect(await page.locator("#detail-meta .badge").textContent()).toBe("failed");
    await page.screenshot({ path: path.join(resultsDir, "dashboard-detail.png"), fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });

  it("filters by state from the legend and refreshes itself", async () => {
    const page = await openDashboard("dark");
    await page.click('.legend li[data-state="failed"]');
    await until("the failed twins", async () => (await page.locator("#devices .badge").allTextContents()).every((t) => t === "failed"));
    const failed = await api<{ items: { deviceId: string }[] }>("compliance/devices?state=failed&limit=25");
    expect(await page.locator('[data-testid="device-link"]').allTextContents()).toEqual(failed.items.map((d) => d.deviceId));
    await page.click('.legend li[data-state="failed"]');
    // A new failing twin shows up within one refresh (5 s).
    await seedDevices(db, [{ deviceId: "zz-new", state: "escalated", records: [{ path: "firmware.version", state: "escalated" }] }]);
    const before = await api<{ byState: { escalated: number } }>("compliance/summary");
    await until("the refresh", async () => (await page.locator('[data-testid="state-count-escalated"]').textContent()) === String(before.byState.escalated));
    await page.click('[data-testid="device-link"]');
    await page.waitForSelector("#detail-body:not([hidden])");
    await page.screenshot({ path: path.join(resultsDir, "dashboard-dark.png"), fullPage: true });
    await page.close();
    expect(errors).toEqual([]);
  });
});
