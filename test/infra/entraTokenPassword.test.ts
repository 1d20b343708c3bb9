import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import { entraTokenPassword, POSTGRES_ENTRA_SCOPE } from "../../shared/store/openStore";

/**
 * A TokenCredential that hands out the tokens it is given, in order (or throws the given errors),
 * recording each request's scopes. Limits: no claims/tenant handling, no real expiry clock.
 */
class FakeCredential implements TokenCredential {
  readonly requests: (string | string[])[] = [];
  constructor(private readonly answers: (AccessToken | Error | null)[]) {}
  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
    this.requests.push(scopes);
    const answer = this.answers.shift();
    if (answer === undefined) throw new Error("FakeCredential: no more tokens");
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

const MINUTE = 60_000;
const token = (name: string, expiresAt: number, refreshAfter?: number): AccessToken => ({
  token: name,
  expiresOnTimestamp: expiresAt,
  tokenType: "Bearer",
  ...(refreshAfter === undefined ? {} : { refreshAfterTimestamp: refreshAfter }),
});

describe("entraTokenPassword", () => {
  let now = 0;
  const clock = { now: () => now };
  beforeEach(() => {
    now = 1_000_000;
  });

  it("asks for a PostgreSQL token and reuses it while it is fresh", async () => {
    const credential = new FakeCredential([token("t1", now + 60 * MINUTE)]);
    const password = entraTokenPassword(credential, clock);
    expect(await password()).toBe("t1");
    now += 54 * MINUTE;
    expect(await password()).toBe("t1");
    expect(credential.requests).toEqual([POSTGRES_ENTRA_SCOPE]);
  });

  it("fetches a new token five minutes before the cached one expires", async () => {
    const credential = new FakeCredential([token("t1", now + 60 * MINUTE), token("t2", now + 120 * MINUTE)]);
    const password = entraTokenPassword(credential, clock);
    await password();
    now += 55 * MINUTE;
    expect(await password()).toBe("t2");
    expect(credential.requests).toHaveLength(2);
  });

  it("honours the token's own refreshAfterTimestamp when it is earlier", async () => {
    const credential = new FakeCredential([token("t1", now + 60 * MINUTE, now + 30 * MINUTE), token("t2", now + 90 * MINUTE)]);
    const password = entraTokenPassword(credential, clock);
    await password();
    now += 31 * MINUTE;
    expect(await password()).toBe("t2");
  });

  it("makes one request for concurrent callers", async () => {
    const credential = new FakeCredential([token("t1", now + 60 * MINUTE)]);
    const password = entraTokenPassword(credential, clock);
    expect(await Promise.all([password(), password(), password()])).toEqual(["t1", "t1", "t1"]);
    expect(credential.requests).toHaveLength(1);
  });

  it("keeps using the cached token when a refresh fails before it expires", async () => {
    const credential = new FakeCredential([token("t1", now + 60 * MINUTE), new Error("IMDS unavailable"), token("t3", now + 120 * MINUTE)]);
    const password = entraTokenPassword(credential, clock);
    await password();
    now += 57 * MINUTE;
    expect(await password()).toBe("t1");
    expect(await password()).toBe("t3");
  });

  it("fails with a redacted, actionable error when there is no valid token", async () => {
    const credential = new FakeCredential([new Error("token request failed: client_secret=x password=Hunter2")]);
    const password = entraTokenPassword(credential, clock);
    const error = (await password().catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/Could not get an Entra access token for PostgreSQL/);
    expect(error.message).toMatch(/AZURE_CLIENT_ID|az login/);
    expect(error.message).not.toContain("Hunter2");
  });

  it("fails when the credential returns no token and the cached one has expired", async () => {
    const credential = new FakeCredential([token("t1", now + 10 * MINUTE), null]);
    const password = entraTokenPassword(credential, clock);
    await password();
    now += 11 * MINUTE;
    await expect(password()).rejects.toThrow(/returned none/);
  });
});
