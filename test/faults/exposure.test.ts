// What the product exposes: every socket it listens on is on loopback (SIP as configured, evapi, the helper's
// metrics endpoint; the helper itself only connects out), config and key files are written 0600, and no full
// device token, password or key appears in anything `pusher start` or the CLI prints, after representative
// flows (REGISTER in each dialect, a pushed call, a dead token dropped, a CANCEL, `pusher devices`).
import { afterAll, beforeAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/free-port";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, WakeFixture, pushParams, startWakeFixture, waitForPushes } from "../support/wake-fixture";
import { SipClient, cancel, invite, register } from "./support/sip-client";
import { descendants, pusherStartPid } from "./support/processes";

const TOKENS = {
  kazoo: "7e57000000000000000000000000000000000000000000000000000000000001",
  rfc8599: "7e57000000000000000000000000000000000000000000000000000000000002",
  dead: "7e57000000000000000000000000000000000000000000000000000000000003",
  cancelled: "7e57000000000000000000000000000000000000000000000000000000000004",
};
const PASSWORD = "s3cret-Passw0rd-never-logged";

let fixture: WakeFixture;
let metricsPort: number;
/** The caller; each phone registers from its own client (own address). */
let client: SipClient;
const phones: SipClient[] = [];
const cliOutput: string[] = [];

function cli(configPath: string, ...args: string[]): string {
  const out = execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  cliOutput.push(out);
  return out;
}

beforeAll(async () => {
  metricsPort = await freePort();
  fixture = await startWakeFixture({ metrics: { port: metricsPort }, timers: { pushWaitMs: 2000 } });
  client = await SipClient.open(fixture.pusher.sipPort);
}, 30000);

afterAll(async () => {
  for (const sender of [client, ...phones]) sender?.close();
  await fixture?.stop();
});

it("listens on loopback only: SIP, evapi and the metrics endpoint", async () => {
  const pids = new Set([
    pusherStartPid(fixture.pusher),
    ...descendants(pusherStartPid(fixture.pusher)).map((process) => process.pid),
  ]);
  const sockets = execFileSync("ss", ["-ltnuHp"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((match) => pids.has(Number(match[1]))))
    .map((line) => line.split(/\s+/)[4]);
  expect(sockets).toContain(`127.0.0.1:${fixture.pusher.linkPort}`);
  expect(sockets).toContain(`127.0.0.1:${metricsPort}`);
  expect(sockets).toContain(`127.0.0.1:${fixture.pusher.sipPort}`);
  expect(sockets.filter((address) => !/^(127\.0\.0\.1|\[::1\]):\d+$/.test(address))).toEqual([]);
  console.log(`[faults] listening sockets of pusher start: ${sockets.join(", ")}`);
});

it("writes config, credentials, users and state files with mode 0600 in 0700 folders", () => {
  const dir = mkdtempSync(join(tmpdir(), "pusher-modes-"));
  const config = join(dir, "pusher.json");
  cli(config, "apps", "add-apple", "com.app.modes", join(TEST_CA_DIR, "apple-app.pem"));
  cli(config, "ua", "add", "Modes", "^Modes");
  cli(config, "users", "add", `alice@${DOMAIN}`, PASSWORD);
  const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);
  const credentials = readdirSync(join(dir, "credentials")).map((file) => join(dir, "credentials", file));
  const state = join(dir, "pusher-state");
  const files = [
    config,
    ...credentials,
    ...readdirSync(state)
      .filter((file) => !file.endsWith(".ctl"))
      .map((file) => join(state, file)),
  ];
  expect(credentials.length).toBeGreaterThan(0);
  expect(Object.fromEntries(files.map((file) => [file.slice(dir.length + 1), mode(file)]))).toEqual(
    Object.fromEntries(files.map((file) => [file.slice(dir.length + 1), "600"])),
  );
  expect(mode(join(dir, "credentials"))).toBe("700");
  expect(
    readFileSync(join(state, readdirSync(state).find((file) => file.startsWith("users"))!)).includes(PASSWORD),
  ).toBe(false);
  // pusher start's own state: runtime config, the link secret, and the device records with sqlite's WAL files
  // (they hold whole tokens).
  const runtimeState = join(fixture.pusher.dir, "state");
  expect(mode(runtimeState)).toBe("700");
  const stateFiles = [
    "pusher.runtime.json",
    "link.secret",
    "devices.sqlite",
    "devices.sqlite-wal",
    "devices.sqlite-shm",
  ];
  expect(stateFiles.map((file) => `${file} ${mode(join(runtimeState, file))}`)).toEqual(
    stateFiles.map((file) => `${file} 600`),
  );
});

it("never prints a full token, password or private key", async () => {
  const { apns, pusher } = fixture;
  // Tokens APNs issued (PushKit), so only the dead one's 410 removes a record.
  for (const token of [TOKENS.kazoo, TOKENS.rfc8599, TOKENS.cancelled])
    apns.addDevice(token, { bundle: APP_ID, kind: "voip" });
  apns.replyFor(TOKENS.dead, { status: 410, reason: "Unregistered" });
  for (const [user, params] of [
    ["expo_kazoo", pushParams(TOKENS.kazoo)],
    ["expo_rfc", `;pn-provider=apns;pn-param=ABCDE12345.com.app.mymobileapp.voip;pn-prid=${TOKENS.rfc8599}`],
    ["expo_dead", pushParams(TOKENS.dead)],
    ["expo_cancel", pushParams(TOKENS.cancelled)],
  ] as const) {
    const phone = await SipClient.open(pusher.sipPort);
    phones.push(phone);
    expect((await phone.send(register(phone, user, DOMAIN, params)).final)?.status).toBe(200);
    pusher.rpc("ul.rm", "location", `${user}@${DOMAIN}`);
  }
  const calls = ["expo_kazoo", "expo_rfc", "expo_dead"].map((user) => client.send(invite(client, user, DOMAIN)));
  await waitForPushes(apns, TOKENS.kazoo, 1, 5000, pusher);
  await waitForPushes(apns, TOKENS.rfc8599, 1, 5000, pusher);
  await waitForPushes(apns, TOKENS.dead, 1, 5000, pusher);
  // The caller hangs up while the last call is held: CANCEL.
  const cancelledInvite = invite(client, "expo_cancel", DOMAIN);
  const cancelledCall = client.send(cancelledInvite);
  await waitForPushes(apns, TOKENS.cancelled, 1, 5000, pusher);
  expect((await client.send(cancel(cancelledInvite)).final)?.status).toBe(200);
  expect((await cancelledCall.final)?.status).toBe(487);
  await Promise.all(calls.map((call) => call.final));
  await pusher.waitFor(new RegExp(`device removed aor=expo_dead@${DOMAIN.replace(/\./g, "\\.")} `));
  // The pushes APNs accepted kept their records: only the 410 removed one.
  expect(apns.requestsFor(TOKENS.kazoo).map((request) => request.status)).toEqual([200]);
  expect(apns.requestsFor(TOKENS.rfc8599).map((request) => request.status)).toEqual([200]);
  expect(pusher.output().match(/device removed aor=\S+/g)).toEqual([`device removed aor=expo_dead@${DOMAIN}`]);
  cli(pusher.configPath, "devices");
  cli(pusher.configPath, "devices", "--json");
  cli(pusher.configPath, "apps", "list");

  const everything = pusher.output() + cliOutput.join("\n");
  const key = readFileSync(join(TEST_CA_DIR, "apple-app.pem"), "utf8")
    .split("\n")
    .filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line));
  expect(key.length).toBeGreaterThan(0);
  const found = [...Object.values(TOKENS), PASSWORD, ...key].filter((secret) => everything.includes(secret));
  expect(found).toEqual([]);
  // The masked forms are there: the test looked where the tokens would be.
  expect(everything).toContain("7e5700…0001");
});
