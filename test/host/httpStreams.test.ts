import path from "node:path";
import type { LogSink } from "../../local/host/invokeFunction";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { streamGate } from "./fixtures/streamGate";

// The local host with an app that called app.setup({ enableHttpStream: true }): requests go to the
// library's HTTP proxy and responses come back from it as streams, as with the Functions host.

const fixturesDir = path.join(__dirname, "fixtures");
let host: LocalHost;
const errors: string[] = [];
const log: LogSink = (e) => {
  if (e.level === "error") errors.push(e.message);
};

beforeAll(async () => {
  host = await startLocalHost({ modules: [path.join(fixturesDir, "streamingFixtureFunctions.ts")], rootDir: fixturesDir, port: 0, scheduleTimers: false, log });
});
afterAll(() => host.stop());
beforeEach(() => {
  errors.length = 0;
  streamGate.reset();
});

const url = (p: string) => `http://127.0.0.1:${host.port}/api/${p}`;

test("the function gets route parameters, query, headers and the URL, and its status, headers and cookies come back", async () => {
  const res = await fetch(url("things/dev%2F7?limit=5"), { headers: { "x-trace": "t1" } });
  expect(res.status).toBe(200);
  expect(res.headers.get("x-answer")).toBe("42");
  expect(res.headers.get("set-cookie")).toBe("session=s1; Path=/; HttpOnly");
  expect(await res.json()).toEqual({ params: { deviceId: "dev/7" }, limit: "5", trace: "t1", url: `http://127.0.0.1:${host.port}/api/things/dev%2F7?limit=5` });
});

test("the request body reaches the function through the proxy", async () => {
  const res = await fetch(url("echo"), { method: "POST", body: "hello ".repeat(100_000) });
  expect(res.status).toBe(201);
  expect(await res.text()).toBe(`echo:${"hello ".repeat(100_000)}`);
});

test("the body reaches the client as the function produces it, before the function's stream has ended", async () => {
  const res = await fetch(url("drip"));
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const first = await reader.read();
  // The function cannot write its second line before the gate opens: this chunk came while its body was still open.
  expect(new TextDecoder().decode(first.value)).toBe("first\n");
  streamGate.open();
  let rest = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
  expect(rest).toBe("last\n");
});

test("a body that fails once under way breaks the transfer instead of ending it as if complete", async () => {
  const res = await fetch(url("cut"));
  expect(res.status).toBe(200);
  await expect(res.text()).rejects.toThrow();
  await waitFor(() => errors.some((m) => m.includes("store went away (fixture)")));
});

test("a function that throws before answering gets a 500 problem+json without the cause", async () => {
  const res = await fetch(url("fails"));
  expect([res.status, res.headers.get("content-type")]).toEqual([500, "application/problem+json"]);
  expect(await res.text()).not.toContain("boom");
  await waitFor(() => errors.some((m) => m.includes("boom (fixture)")));
});

test("a function that returns no response answers 204", async () => {
  const res = await fetch(url("silent"));
  expect(res.status).toBe(204);
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; host errors: ${errors.join(" | ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
