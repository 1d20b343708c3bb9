#!/usr/bin/env node
// azd's preprovision hook (azure.yaml). Before anything is created:
//   - OPERATOR_PRINCIPAL_NAME (PostgreSQL's name for the operator, i.e. you): taken from your sign-in
//     (the upn of an azd / az CLI token) when unset, and saved with `azd env set`;
//   - the database setup after provisioning (local/cli/postgresSetup.ts) connects from this machine:
//     with postgresNetwork = privateEndpoint (the default) the server has no public access unless
//     POSTGRES_ALLOWED_IPS lists this machine's address, so stop now with what to do rather than
//     after half an hour of provisioning. SKIP_POSTGRES_SETUP=true opts out (run the setup from
//     inside the virtual network instead).
"use strict";
const { spawnSync } = require("node:child_process");

/** Problems with the azd environment's values, each naming the variable and the fix. */
function environmentProblems(env) {
  const problems = [];
  const network = env.POSTGRES_NETWORK || "privateEndpoint";
  if (!["privateEndpoint", "allowList"].includes(network)) {
    problems.push(`POSTGRES_NETWORK must be privateEndpoint or allowList (azd env set POSTGRES_NETWORK privateEndpoint)`);
  }
  let ips = [];
  if (env.POSTGRES_ALLOWED_IPS) {
    try {
      ips = JSON.parse(env.POSTGRES_ALLOWED_IPS);
    } catch {
      ips = null;
    }
    const address = /^\d{1,3}(\.\d{1,3}){3}(-\d{1,3}(\.\d{1,3}){3})?$/;
    if (!Array.isArray(ips) || !ips.every((ip) => typeof ip === "string" && address.test(ip))) {
      problems.push(`POSTGRES_ALLOWED_IPS must be a JSON array of IPv4 addresses or ranges, e.g. azd env set POSTGRES_ALLOWED_IPS '["203.0.113.7"]'`);
      ips = [];
    }
  }
  if (env.SKIP_POSTGRES_SETUP !== "true" && ips.length === 0) {
    problems.push(
      `the database setup after provisioning connects to PostgreSQL from this machine, but ${network === "privateEndpoint" ? "the private server has no public access" : "the firewall admits no address"}: ` +
        `azd env set POSTGRES_ALLOWED_IPS '["<this machine's public IPv4>"]', or azd env set SKIP_POSTGRES_SETUP true and run local/cli/postgresSetup.ts from inside the virtual network (README, Deploy to Azure)`,
    );
  }
  return problems;
}

/** The signed-in user's principal name, from the claims of an azd (or az) token; undefined for a service principal. */
async function signedInUserName() {
  const { AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential } = require("@azure/identity");
  const token = await new ChainedTokenCredential(new AzureDeveloperCliCredential(), new AzureCliCredential()).getToken("https://management.azure.com/.default");
  const payload = token.token.split(".")[1] ?? "";
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  return claims.upn || claims.unique_name || undefined;
}

async function main() {
  const problems = environmentProblems(process.env);
  if (!process.env.OPERATOR_PRINCIPAL_NAME) {
    const name = await signedInUserName().catch(() => undefined);
    if (!name) {
      problems.push("OPERATOR_PRINCIPAL_NAME is not set and your sign-in has no user principal name: azd env set OPERATOR_PRINCIPAL_NAME <your UPN, or the Entra group's name with OPERATOR_PRINCIPAL_TYPE=Group>");
    } else {
      const set = spawnSync("azd", ["env", "set", "OPERATOR_PRINCIPAL_NAME", name], { stdio: "inherit", shell: process.platform === "win32" });
      if (set.status !== 0) problems.push(`could not save OPERATOR_PRINCIPAL_NAME: run azd env set OPERATOR_PRINCIPAL_NAME ${name}`);
      else console.log(`preprovision: OPERATOR_PRINCIPAL_NAME=${name} (PostgreSQL Entra admin)`);
    }
  }
  if (problems.length > 0) {
    for (const problem of problems) console.error(`preprovision: ${problem}`);
    process.exit(1);
  }
}

module.exports = { environmentProblems };

if (require.main === module) {
  main().catch((error) => {
    console.error(`preprovision: ${error.message}`);
    process.exit(1);
  });
}
