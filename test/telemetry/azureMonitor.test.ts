import { execFile } from "node:child_process";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { ensureCertificates, type EmulatorCertificates } from "../../local/emulator/ensureCertificates";
import { appInsightsCredential } from "../../shared/telemetry/startTelemetry";

// In Azure the metrics go to Application Insights through the Azure Monitor distro. The ingestion
// endpoint here is a local HTTPS server (the connection string's IngestionEndpoint; the exporter
// always speaks https) with the emulator's local certificate, trusted by the recording process
// through NODE_EXTRA_CA_CERTS; what the exporter posts is read back as Application Insights' JSON.

const repoRoot = path.resolve(__dirname, "..", "..");
let certificates: EmulatorCertificates;
let server: Server;
const bodies: string[] = [];

beforeAll(async () => {
  certificates = await ensureCertificates(path.join(tmpdir(), "twin-reconciler-test-certs"));
  server = createServer({ key: certificates.keyPem, cert: certificates.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      bodies.push((req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8"));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ itemsReceived: 1, itemsAccepted: 1, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

test("with APPLICATIONINSIGHTS_CONNECTION_STRING set, the metrics are sent to Application Insights' ingestion endpoint", async () => {
  const port = (server.address() as AddressInfo).port;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [path.join(repoRoot, "bin", "run-ts.js"), path.join(__dirname, "fixtures", "recordToAppInsights.ts")],
    {
      cwd: repoRoot,
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        NODE_EXTRA_CA_CERTS: certificates.caFile,
        APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:${port}/`,
        // The SDK's own usage telemetry would go to Microsoft's endpoint.
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED: "true",
      },
    },
  );
  expect(stdout.trim()).toBe("azureMonitor");
  const items = bodies.flatMap((body) => JSON.parse(body) as { name: string; data: { baseData: { metrics: { name: string; value: number }[]; properties?: Record<string, string> } } }[]);
  const metricsSent = items.filter((i) => i.name.endsWith("Metric")).flatMap((i) => i.data.baseData.metrics.map((m) => ({ ...m, properties: i.data.baseData.properties ?? {} })));
  expect(metricsSent).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: "twin_reconciler.events", value: 7, properties: expect.objectContaining({ outcome: "applied" }) }),
      expect.objectContaining({ name: "twin_reconciler.repushes", value: 2, properties: expect.objectContaining({ outcome: "escalated" }) }),
      expect.objectContaining({ name: "twin_reconciler.event.age", value: 3, properties: expect.objectContaining({ partition: "1" }) }),
    ]),
  );
}, 90_000);

test("the authentication string names the managed identity; anything but AAD is refused, naming the setting", () => {
  expect(appInsightsCredential(undefined)).toBeUndefined();
  expect(appInsightsCredential("Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555")?.constructor.name).toBe("ManagedIdentityCredential");
  expect(() => appInsightsCredential("Authorization=Key")).toThrow(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING/);
});
