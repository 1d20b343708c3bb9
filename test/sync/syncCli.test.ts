/**
 * `twin-reconciler sync`: one complete pass against the hub the settings name (here the emulator,
 * through its connection string, port and CA file, as `npm start` prints them).
 */
import { main } from "../../local/cli/main";
import { startEmulator, type Emulator } from "../../local/emulator";

const SETTINGS = ["IOTHUB_CONNECTION_STRING", "IOTHUB_EMULATOR_PORT", "IOTHUB_EMULATOR_CA_FILE", "PGLITE_DATA_DIR", "HUB_QUERIES_PER_MINUTE", "POLICY_PATH", "DATABASE_URL"];

let emulator: Emulator;
const saved = new Map<string, string | undefined>();
beforeAll(async () => {
  emulator = await startEmulator({ throttling: "off" });
  for (const name of SETTINGS) saved.set(name, process.env[name]);
});
afterAll(async () => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await emulator?.stop();
});
beforeEach(() => {
  for (const name of SETTINGS) delete process.env[name];
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

describe("twin-reconciler sync", () => {
  it("runs one complete pass against the hub from the settings and prints it", async () => {
    for (let i = 0; i < 7; i++) {
      emulator.createDevice(`cli-${i}`);
      emulator.updateDesired(`cli-${i}`, { interval: i });
    }
    emulator.createModule("cli-0", "agent");
    Object.assign(process.env, {
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      PGLITE_DATA_DIR: "memory",
      HUB_QUERIES_PER_MINUTE: "600",
    });
    const result = await run(["sync", "--json"]);
    expect(result).toMatchObject({ code: 0 });
    const report = JSON.parse(result.out) as { pass: { phase: string; twinsRead: number; queriesUsed: number; twinsRemoved: number } };
    expect(report.pass).toMatchObject({ phase: "done", twinsRead: 8, queriesUsed: 2, twinsRemoved: 0 });
    expect(result.err).not.toContain("SharedAccessKey");
  });

  it("exits 2 with one line when no hub is configured", async () => {
    process.env.PGLITE_DATA_DIR = "memory";
    const result = await run(["sync"]);
    expect(result.code).toBe(2);
    expect(result.err).toBe("twin-reconciler: sync needs a hub: set IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME\n");
  });

  it("exits 2 naming a bad setting", async () => {
    process.env.HUB_QUERIES_PER_MINUTE = "0";
    const result = await run(["sync"]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("HUB_QUERIES_PER_MINUTE: must be a whole number from 1 to 10000");
  });
});
