/**
 * The host side of HTTP streams on its own: forwardToHttpProxy between a client and a stand-in for
 * the library's proxy. The stand-in is a plain HTTP server reached by its URL, as the host reaches
 * the worker's; unlike @azure/functions 4.x (which writes without waiting, nodejs-library#294) it
 * writes only when its response accepts more, so what it has produced shows how far the host lets
 * a stalled client's response run ahead.
 */
import { Agent, createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { forwardToHttpProxy } from "../../local/host/forwardToHttpProxy";

const MB = 1024 * 1024;
const TOTAL = 128 * MB;
const chunk = Buffer.alloc(64 * 1024, "x");

let proxy: Server;
let front: Server;
let agent: Agent;
let produced = 0;
let finished: Promise<void>;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  proxy = createServer((req, res) => {
    expect(req.headers["x-ms-invocation-id"]).toBe("inv-1");
    res.writeHead(200, { "content-type": "text/plain" });
    finished = (async () => {
      while (produced < TOTAL) {
        produced += chunk.length;
        if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
      }
      res.end();
    })();
  });
  const proxyPort = await listen(proxy);
  agent = new Agent({ keepAlive: true });
  front = createServer((req, res) => {
    void forwardToHttpProxy(req, res, { httpUri: `http://127.0.0.1:${proxyPort}/`, agent, invocationId: "inv-1", invoke: () => new Promise((r) => setTimeout(r, 50)).then(() => finished) });
  });
  await listen(front);
});

afterAll(async () => {
  agent.destroy();
  front.closeAllConnections();
  proxy.closeAllConnections();
  await Promise.all([new Promise((r) => front.close(r)), new Promise((r) => proxy.close(r))]);
});

test("a client that stops reading stops the reading from the proxy (back-pressure), and then gets every byte", async () => {
  const res = await new Promise<IncomingMessage>((resolve, reject) =>
    request(`http://127.0.0.1:${(front.address() as AddressInfo).port}/api/export`, resolve).once("error", reject).end(),
  );
  expect(res.statusCode).toBe(200);
  res.pause();
  await new Promise((r) => setTimeout(r, 1500));
  // Loopback socket buffers and stream high-water marks hold a few MB; without back-pressure the proxy would have written all 128 MB.
  expect(produced).toBeLessThan(48 * MB);
  let received = 0;
  res.on("data", (c: Buffer) => (received += c.length));
  res.resume();
  await new Promise((r) => res.once("end", r));
  expect(received).toBe(TOTAL);
});
