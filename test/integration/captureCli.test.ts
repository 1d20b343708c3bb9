/**
 * `twin-reconciler capture`: its arguments and help. (Recording from an endpoint, and capture → replay
 * against the emulator, are in test/e2e/captureReplay.test.ts.)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../local/cli/main";

const SECRET = "S3cretKeyNeverShown0123456789abcdefABCDEF+/=";
const CS = `Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=${SECRET};EntityPath=twin-changes`;
const CS_NO_ENTITY = `Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=${SECRET}`;
const dir = mkdtempSync(join(tmpdir(), "capture-"));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

describe("twin-reconciler capture arguments", () => {
  test.each([
    { args: [], message: /capture needs --connection-string CS or --namespace/ },
    { args: ["--hub", "twin-changes"], message: /capture needs --connection-string/ },
    { args: ["--connection-string", CS, "--namespace", "my-ns.servicebus.windows.net"], message: /not both/ },
    { args: ["--connection-string", CS_NO_ENTITY], message: /names no EntityPath: add --hub/ },
    { args: ["--connection-string", CS, "--hub", "other-hub"], message: /another Event Hub/ },
    { args: ["--connection-string", `SharedAccessKeyName=listen;SharedAccessKey=${SECRET};EntityPath=x`], message: /has no Endpoint/ },
    { args: ["--connection-string", `Endpoint=https://my-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=${SECRET};EntityPath=x`], message: /not sb:\/\// },
    { args: ["--connection-string", `Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKey=${SECRET};EntityPath=x`], message: /needs SharedAccessKeyName and SharedAccessKey/ },
    { args: ["--connection-string", SECRET], message: /has no Endpoint/ },
    { args: ["--connection-string"], message: /option --connection-string needs a value/ },
    { args: ["--connection-strng", CS], message: /unknown option --connection-strng/ },
    { args: [`--connection-strng=${CS}`], message: /unknown option --connection-strng/ },
    { args: [CS], message: /no positional arguments/ },
    { args: ["--namespace", "my-ns.servicebus.windows.net"], message: /--namespace needs --hub/ },
    { args: ["--namespace", "not a host", "--hub", "h"], message: /--namespace must be a fully qualified namespace/ },
    { args: ["--namespace", "my-ns", "--hub", "h"], message: /--namespace must be a fully qualified namespace/ },
    { args: ["--namespace", "my-ns.servicebus.windows.net", "--hub", "a/b"], message: /--hub must be an Event Hubs name/ },
    { args: ["--connection-string", CS, "--consumer-group", ""], message: /--consumer-group must be an Event Hubs name/ },
    { args: ["--connection-string", CS, "--from", "yesterday"], message: /--from must be earliest, latest/ },
    { args: ["--connection-string", CS, "--from", "seq:-1"], message: /--from must be/ },
    { args: ["--connection-string", CS, "--from", "2026-13-45T99:00:00Z"], message: /--from must be/ },
    { args: ["--connection-string", CS, "--from", "1700000000000"], message: /--from must be/ },
    { args: ["--connection-string", CS, "--count", "0"], message: /--count must be a whole number of events, at least 1/ },
    { args: ["--connection-string", CS, "--count", "2.5"], message: /--count must be a whole number/ },
    { args: ["--connection-string", CS, "--count", "many"], message: /--count must be a whole number/ },
    { args: ["--connection-string", CS, "--duration", "soon"], message: /--duration "soon" is not a duration/ },
    { args: ["--connection-string", CS, "--duration", "0s"], message: /--duration "0s" is too short/ },
    { args: ["--connection-string", CS, "--duration", "400d"], message: /--duration "400d" is too long/ },
    { args: ["--connection-string", CS, "--out", dir], message: /is a folder/ },
    { args: ["--connection-string", CS, "--out", join(dir, "missing", "events.jsonl")], message: /no such folder/ },
    { args: ["--connection-string", CS, "--out", ""], message: /--out needs a file name/ },
  ])("exits 2 with one line, never the key, when the error is $message", async ({ args, message }) => {
    const { code, out, err } = await cli(["capture", ...args]);
    expect({ code, out }).toEqual({ code: 2, out: "" });
    expect(err).toMatch(/^twin-reconciler: /);
    expect(err).toMatch(message);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).not.toContain(SECRET);
    expect(err).not.toContain(SECRET.slice(0, 12));
  });

  test("--help documents every option and exits 0", async () => {
    for (const help of ["--help", "-h"]) {
      const { code, out, err } = await cli(["capture", help]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      for (const option of ["--connection-string", "--namespace", "--hub", "--consumer-group", "--from", "--out", "--duration", "--count", "--help"]) {
        expect(out).toMatch(new RegExp(`^\\s+(-h, )?${option} `, "m"));
      }
      for (const position of ["earliest", "latest", "seq:N", "ISO-8601"]) expect(out).toContain(position);
      expect(out).toContain("DefaultAzureCredential");
      expect(out).toContain("stderr");
    }
  });

  test("the top-level usage points at capture's help", async () => {
    const { code, err } = await cli(["frobnicate"]);
    expect(code).toBe(2);
    expect(err).toContain("twin-reconciler capture --help");
  });

  test("an endpoint that refuses the connection ends the capture with exit 1 and one line, never the key", async () => {
    const refused = `Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=listen;SharedAccessKey=${SECRET};EntityPath=twin-changes;UseDevelopmentEmulator=true`;
    const { code, out, err } = await cli(["capture", "--connection-string", refused, "--count", "1"]);
    expect({ code, out }).toEqual({ code: 1, out: "" });
    expect(err).toMatch(/^twin-reconciler: reading twin-changes failed: .*ECONNREFUSED/);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).not.toContain(SECRET.slice(0, 12));
  }, 30_000);
});
