import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCertificates } from "../../local/emulator/ensureCertificates";

const root = mkdtempSync(join(tmpdir(), "emulator-certs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("generates a CA and a localhost/127.0.0.1 server certificate it signed, once, even when asked concurrently", async () => {
  const dir = join(root, "certs");
  const [a, b] = await Promise.all([ensureCertificates(dir), ensureCertificates(dir)]);
  const again = await ensureCertificates(dir);
  expect(again.caPem).toBe(a.caPem);
  expect(again.certPem).toBe(a.certPem);
  expect([a.certPem, b.certPem].includes(again.certPem)).toBe(true);

  const ca = new X509Certificate(a.caPem);
  const leaf = new X509Certificate(a.certPem);
  expect(ca.ca).toBe(true);
  expect(leaf.verify(ca.publicKey)).toBe(true);
  expect(leaf.checkHost("localhost")).toBe("localhost");
  expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
  expect(a.caFile).toBe(join(dir, "ca.crt"));
});

test("fills a folder that already holds other files without touching them", async () => {
  const dir = join(root, "shared");
  mkdirSync(dir);
  writeFileSync(join(dir, "other.txt"), "keep");
  const certs = await ensureCertificates(dir);
  expect(new X509Certificate(certs.certPem).checkHost("localhost")).toBe("localhost");
  expect(readdirSync(dir)).toEqual(expect.arrayContaining(["other.txt", "ca.crt", "server.crt", "server.key"]));
});
