import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A local CA and a leaf certificate for `localhost` / `127.0.0.1`, PEM-encoded. */
export interface EmulatorCertificates {
  caPem: string;
  caFile: string;
  keyPem: string;
  certPem: string;
}

/**
 * Returns the emulator's TLS material from `dir`, generating it once with the `openssl` CLI
 * (Node cannot issue certificates by itself). Generation happens in a temporary sibling folder
 * that is renamed into place, so parallel test workers never see half-written files.
 */
export async function ensureCertificates(dir: string, openssl = "openssl"): Promise<EmulatorCertificates> {
  if (!complete(dir)) {
    mkdirSync(dirname(dir), { recursive: true });
    const tmp = mkdtempSync(`${dir}.tmp-`);
    try {
      await generate(tmp, openssl);
      try {
        renameSync(tmp, dir);
      } catch {
        // The folder exists (holding other files, or another worker won the race).
        if (!complete(dir)) {
          mkdirSync(dir, { recursive: true });
          for (const file of ["ca.key", "ca.crt", "server.key", "server.crt"]) copyFileSync(join(tmp, file), join(dir, file));
        }
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return {
    caPem: readFileSync(join(dir, "ca.crt"), "utf8"),
    caFile: join(dir, "ca.crt"),
    keyPem: readFileSync(join(dir, "server.key"), "utf8"),
    certPem: readFileSync(join(dir, "server.crt"), "utf8"),
  };
}

function complete(dir: string): boolean {
  return ["ca.crt", "server.key", "server.crt"].every((f) => existsSync(join(dir, f)));
}

async function generate(dir: string, openssl: string): Promise<void> {
  const at = (f: string): string => join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run(openssl, [
    "req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.crt"), "-days", "3650",
    "-subj", "/CN=Twin Reconciler local IoT Hub emulator CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await run(openssl, ["req", ...ec, "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=localhost"]);
  writeFileSync(
    at("server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await run(openssl, [
    "x509", "-req", "-in", at("server.csr"), "-CA", at("ca.crt"), "-CAkey", at("ca.key"), "-CAcreateserial",
    "-out", at("server.crt"), "-days", "825", "-sha256", "-extfile", at("server.ext"),
  ]);
}
