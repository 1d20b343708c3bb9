import { redact } from "../../shared/redact";

// Made-up keys, built at run time so no key-shaped literal sits in the repository.
const hubKey = Buffer.from("secretkey1234567890").toString("base64");
const storageKey = Buffer.from("ABCDEFGHIJKLMNOP").toString("base64");

describe("redact", () => {
  it.each([
    ["an IoT Hub connection string key", `HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`, hubKey.slice(0, 24), "SharedAccessKey=***"],
    ["a SAS token signature", "SharedAccessSignature sr=h&sig=abc%2Bdef%3D&se=1795410634536&skn=iothubowner", "abc%2Bdef", "sig=***&se=1795410634536"],
    ["a storage account key", `DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${storageKey};EndpointSuffix=core.windows.net`, storageKey.slice(0, 20), "AccountKey=***;"],
    ["a key=value password", "host=db user=app password=Hunter2! sslmode=require", "Hunter2!", "password=*** sslmode"],
    ["an ADO-style Password", "Server=db;Password=s3cr3t;Database=x", "s3cr3t", "Password=***;Database"],
    ["a JSON password", '{"user":"app","password":"p\\"w0rd"}', "w0rd", '"password":"***"'],
    ["a bearer token", "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJhbGciOiJSUzI1NiJ9", "Bearer ***"],
    ["a postgres URL password", "connect postgres://app:Sup3r%40secret@db.example.com:5432/twins failed", "Sup3r", "postgres://app:***@db.example.com"],
    ["a postgresql URL password", "postgresql://app:pw@localhost/db", ":pw@", "postgresql://app:***@localhost"],
  ])("masks %s", (_what, text, secret, kept) => {
    const result = redact(text);
    expect(result).not.toContain(secret);
    expect(result).toContain(kept);
  });

  it("leaves text without secrets unchanged", () => {
    const text = "get twin d1/m1 failed: ThrottlingError: The request has been throttled. postgres://app@db/twins sig";
    expect(redact(text)).toBe(text);
  });

  it("masks every occurrence", () => {
    expect(redact("SharedAccessKey=a1;SharedAccessKey=b2")).toBe("SharedAccessKey=***;SharedAccessKey=***");
  });
});
