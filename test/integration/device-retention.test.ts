// Retention end to end, without waiting days: records are aged in the sqlite file while Kamailio is stopped, as
// 40 days of silence would leave them, and Kamailio is started again on it. A record whose retention ended is not
// loaded (whether its row's `expires` says so, or only its registration time after retentionDays was lowered),
// its row is deleted, and a fresh record of the same run is loaded as usual.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PusherProcess, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { Phone } from "../support/topology";
import { APP_ID, pushParams, registerPhone, USER_AGENT } from "../support/wake-fixture";

const DAY_MS = 24 * 3600 * 1000;
const RETENTION_DAYS = 30;

let pusher: PusherProcess;

function database(): string {
  return join(pusher.dir, "state", "devices.sqlite");
}

function sql(statement: string): string {
  return execFileSync("sqlite3", [database(), statement], { encoding: "utf8" });
}

function quoted(text: string): string {
  return "'" + text.replace(/'/g, "''") + "'";
}

/** Rewrites one AOR's row as if its last REGISTER was `daysAgo` days ago; `expiresAtS` as given. */
function ageRow(aor: string, daysAgo: number, expiresAtS: number): void {
  const devices = JSON.parse(sql(`SELECT devices FROM pusher_devices WHERE aor = ${quoted(aor)}`));
  for (const instance of Object.keys(devices)) devices[instance].registeredAtMs = Date.now() - daysAgo * DAY_MS;
  sql(
    `UPDATE pusher_devices SET devices = ${quoted(JSON.stringify(devices))}, expires = ${Math.floor(expiresAtS)} WHERE aor = ${quoted(aor)}`,
  );
}

beforeAll(async () => {
  pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: "127.0.0.1:9" } } },
    devices: { retentionDays: RETENTION_DAYS },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
});

it("does not load records whose retention ended while Kamailio was down, deletes their rows, and keeps the fresh one", async () => {
  const phones = { fresh: await Phone.create(), expired: await Phone.create(), outlived: await Phone.create() };
  for (const [name, phone] of Object.entries(phones))
    await registerPhone(pusher, phone, pushParams(`${name}${process.pid}0123456789abcdef`), { userAgent: USER_AGENT });
  await pusher.stop();

  const nowS = Date.now() / 1000;
  // Silent for 40 days: the row's expires (last REGISTER + retention) is 10 days past.
  ageRow(phones.expired.aor, 40, nowS - 10 * 86400);
  // Silent for 40 days, but its row was written when retentionDays was 90: only its registration time tells.
  ageRow(phones.outlived.aor, 40, nowS + 50 * 86400);
  // Registered 20 days ago: within the 30 days.
  ageRow(phones.fresh.aor, 20, nowS + 10 * 86400);

  pusher = await pusher.restart();
  await pusher.waitFor(/device records loaded from the database: 1 devices of 1 AORs/);
  const table = pusher.rpc("htable.dump", "pusher_devices");
  expect(table).toContain(phones.fresh.aor);
  expect(table).not.toContain(phones.expired.aor);
  expect(table).not.toContain(phones.outlived.aor);
  expect(sql(`SELECT aor FROM pusher_devices WHERE aor = ${quoted(phones.expired.aor)}`).trim()).toBe("");
}, 60000);

// A record whose retention ends while Kamailio runs (aged in htable here, as weeks of silence would leave it) goes
// when its AOR is next written, and its token leaves the token index with it: the index held the tokens of such
// records until the next restart.
it("drops a record past retention, with its token index entry, when its AOR is next written", async () => {
  const silent = await Phone.create();
  const silentToken = `0a9ed${process.pid}0123456789abcdef`;
  const newToken = `0ew${process.pid}0123456789abcdef`;
  await registerPhone(pusher, silent, pushParams(silentToken), { userAgent: USER_AGENT });
  expect(pusher.rpc("htable.dump", "pusher_tokens")).toContain(`apple:${silentToken}`);
  const value = /value: (.*)/.exec(pusher.rpc("htable.get", "pusher_devices", silent.aor))![1];
  const devices = JSON.parse(value.slice(value.indexOf("{")));
  for (const instance of Object.keys(devices)) devices[instance].registeredAtMs -= 40 * DAY_MS;
  pusher.rpc("htable.sets", "pusher_devices", silent.aor, JSON.stringify(devices));

  // Another phone of the same AOR registers.
  await registerPhone(pusher, await Phone.create({ user: silent.user }), pushParams(newToken), {
    userAgent: USER_AGENT,
  });
  const tokens = pusher.rpc("htable.dump", "pusher_tokens");
  expect(tokens).toContain(`apple:${newToken}`);
  expect(tokens).not.toContain(silentToken);
  expect(pusher.rpc("htable.get", "pusher_devices", silent.aor)).not.toContain(silentToken);
  expect(sql(`SELECT devices FROM pusher_devices WHERE aor = ${quoted(silent.aor)}`)).not.toContain(silentToken);
}, 60000);
