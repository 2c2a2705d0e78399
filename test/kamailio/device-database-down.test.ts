// The device records' PostgreSQL down (docs/cluster.md, "Database"): every REGISTER is still answered 200 and its
// record is in memory (`pusher devices`), counted in pusher_devices_unsaved; when the database is back the timer
// writes each unsaved AOR's current record, and a Kamailio crashed after that finds them all in the database.
// Kamailio also starts when the database is down, and once it answers loads the records it holds, keeping the
// devices registered meanwhile. A throwaway PostgreSQL (test/support/postgres.ts) stopped and started on its data;
// Kamailio runs with the command line `pusher start` gives it (PUSHER_DB_POSTGRES), without the helper.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startPostgres, type PostgresServer } from "../support/postgres";
import { freePort } from "../support/free-port";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, register } from "../faults/support/sip-client";
import { waitUntil as pollUntil } from "../support/wait-until";
import { SeparateServices, separateServices } from "../faults/support/processes";

// Every 100 ms: the checks spawn psql, kamcmd or the CLI.
const waitUntil = (check: () => boolean, timeoutMs: number, what: string | (() => string)) =>
  pollUntil(check, timeoutMs, what, 100);

const CONFIG = {
  userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
  apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: "127.0.0.1:9" } } },
};
// An answer, however late, proves the worker was not stalled for good; a REGISTER that waits for a dead
// database would get none before the client gives up (no answer is `null`).
const ANSWER_TIMEOUT_MS = 5000;

function tokenOf(user: string): string {
  return Buffer.from(user).toString("hex").padEnd(64, "0");
}

/** `pusher devices <aor> --json --show-tokens` against this Kamailio: [instance, token] of each device. */
function listedDevices(services: SeparateServices, user: string): [string, string][] {
  const out = execFileSync(
    process.execPath,
    [
      join(ROOT, "dist", "cli.js"),
      "--config",
      services.configPath,
      "devices",
      `${user}@${DOMAIN}`,
      "--json",
      "--show-tokens",
    ],
    {
      encoding: "utf8",
    },
  );
  return (JSON.parse(out) as { instance: string; token: string }[])
    .map((device) => [device.instance, device.token] as [string, string])
    .sort();
}

/**
 * The value of `pusher_devices_unsaved` in `pusher metrics`: Kamailio's side over the ctl socket (no helper runs
 * here, so it prints that side and exits 1).
 */
function unsavedGauge(services: SeparateServices): number {
  let out: string;
  try {
    out = execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", services.configPath, "metrics"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    out = String((error as { stdout?: string }).stdout ?? "");
  }
  return Number(/^pusher_devices_unsaved (\S+)$/m.exec(out)?.[1]);
}

async function registered(
  phone: SipClient,
  user: string,
  token: string,
  instance?: string,
): Promise<number | undefined> {
  return (
    await phone.send(register(phone, user, DOMAIN, pushParams(token, instance)), { timeoutMs: ANSWER_TIMEOUT_MS }).final
  )?.status;
}

function count(text: string, pattern: RegExp): number {
  return (text.match(new RegExp(pattern.source, "g")) ?? []).length;
}

describe("device records while PostgreSQL is down", () => {
  let postgres: PostgresServer;
  let services: SeparateServices;
  let phone: SipClient;
  const rowsOf = () => postgres.query("SELECT aor, devices FROM pusher_devices ORDER BY aor").trim();

  beforeAll(async () => {
    postgres = await startPostgres();
    services = await separateServices(CONFIG, { deviceDatabaseUrl: postgres.url });
    await services.startKamailio();
    phone = await SipClient.open(services.sipPort);
  }, 60000);

  afterAll(async () => {
    phone?.close();
    await services?.stop();
    postgres?.stop();
  });

  it("answers every REGISTER from memory while it is down, and writes the records when it is back", async () => {
    expect(await registered(phone, "before", tokenOf("before"))).toBe(200);
    expect(rowsOf()).toContain(`before@${DOMAIN}|`);

    postgres.down();
    const users = ["down1", "down2", "down3"];
    for (const user of users) expect(await registered(phone, user, tokenOf(user))).toBe(200);
    // A record the database has changes while it is down: the row gets the new token later.
    expect(await registered(phone, "before", tokenOf("before-again"))).toBe(200);
    for (const user of users) expect(listedDevices(services, user).map(([, token]) => token)).toEqual([tokenOf(user)]);
    expect(unsavedGauge(services)).toBe(4);
    await waitUntil(
      () => /device database does not answer/.test(services.kamailioOutput()),
      10000,
      "the database to be found down",
    );
    // Only the first failed statement was tried from a SIP worker; the other REGISTERs sent nothing.
    expect(count(services.kamailioOutput(), /not written to the database/)).toBeLessThanOrEqual(1);

    postgres.up();
    await waitUntil(
      () =>
        users.every((user) => rowsOf().includes(`${user}@${DOMAIN}|`)) && rowsOf().includes(tokenOf("before-again")),
      15000,
      () => `the rows:\n${rowsOf()}`,
    );
    await waitUntil(
      () => /device database answers again after \d+ s: 4 AORs written from memory/.test(services.kamailioOutput()),
      5000,
      "the log line",
    );
    expect(count(services.kamailioOutput(), /device database does not answer/)).toBe(1);
    expect(unsavedGauge(services)).toBe(0);
    expect(rowsOf()).not.toContain(tokenOf("before") + '"');
    // The SIP workers use it again: a REGISTER's row is written before its 200.
    expect(await registered(phone, "up1", tokenOf("up1"))).toBe(200);
    expect(rowsOf()).toContain(`up1@${DOMAIN}|`);

    // Written for good: a crash now loses nothing.
    await services.killKamailio();
    await services.startKamailio();
    await waitUntil(
      () => /device records loaded from the database: 5 devices of 5 AORs/.test(services.kamailioOutput()),
      10000,
      "the records to load",
    );
    for (const user of users) expect(listedDevices(services, user).map(([, token]) => token)).toEqual([tokenOf(user)]);
    expect(listedDevices(services, "before").map(([, token]) => token)).toEqual([tokenOf("before-again")]);
  }, 60000);

  it("starts while it is down, and loads its records when it answers, beside the devices registered meanwhile", async () => {
    await services.killKamailio();
    postgres.down();
    await services.startKamailio();
    await waitUntil(
      () => /cannot read device records from the database/.test(services.kamailioOutput()),
      10000,
      "the failed load",
    );
    // A second device of an AOR the database holds, and a new AOR.
    expect(await registered(phone, "down1", tokenOf("down1-tablet"), "00000000-0000-0000-0000-0000000000a1")).toBe(200);
    expect(await registered(phone, "late", tokenOf("late"))).toBe(200);
    expect(listedDevices(services, "down1").map(([, token]) => token)).toEqual([tokenOf("down1-tablet")]);

    postgres.up();
    await waitUntil(
      () =>
        /device records loaded from the database: 4 devices of 4 AORs, 1 devices added to AORs registered meanwhile/.test(
          services.kamailioOutput(),
        ),
      15000,
      () => services.kamailioOutput().slice(-3000),
    );
    expect(
      listedDevices(services, "down1")
        .map(([, token]) => token)
        .sort(),
    ).toEqual([tokenOf("down1"), tokenOf("down1-tablet")].sort());
    expect(listedDevices(services, "down2").map(([, token]) => token)).toEqual([tokenOf("down2")]);
    await waitUntil(
      () => rowsOf().includes(tokenOf("down1-tablet")) && rowsOf().includes(`late@${DOMAIN}|`),
      10000,
      () => `the rows:\n${rowsOf()}`,
    );
    // The row of down1 holds both devices: the one it had, and the one registered while it was down.
    const down1 =
      rowsOf()
        .split("\n")
        .find((row) => row.startsWith(`down1@${DOMAIN}|`)) ?? "";
    expect(down1).toContain(tokenOf("down1"));
    expect(down1).toContain(tokenOf("down1-tablet"));
    // The SIP workers, which started without a connection (sqlops connect_mode 1), connect at their next statement
    // (route PUSHER_INTERNAL_DB_CONNECT): the row is written before the 200.
    await waitUntil(
      () => /value: 0/.test(services.rpc("htable.get", "pusher_state", "db_held")),
      5000,
      "the database to be released",
    );
    expect(await registered(phone, "up2", tokenOf("up2"))).toBe(200);
    expect(rowsOf()).toContain(`up2@${DOMAIN}|`);
  }, 60000);
});

describe("a device database never reachable", () => {
  let services: SeparateServices;
  let phone: SipClient;

  beforeAll(async () => {
    // Nothing listens there: every connection is refused.
    services = await separateServices(CONFIG, {
      deviceDatabaseUrl: `postgres://pusher:none@127.0.0.1:${await freePort()}/pusher`,
    });
    await services.startKamailio();
    phone = await SipClient.open(services.sipPort);
  }, 60000);

  afterAll(async () => {
    phone?.close();
    await services?.stop();
  });

  it("does not keep Kamailio from starting, nor REGISTERs from being answered", async () => {
    expect(await registered(phone, "alone", tokenOf("alone"))).toBe(200);
    expect(listedDevices(services, "alone").map(([, token]) => token)).toEqual([tokenOf("alone")]);
    await waitUntil(
      () => /device database does not answer/.test(services.kamailioOutput()),
      10000,
      "the database to be found down",
    );
    expect(unsavedGauge(services)).toBe(1);
  }, 30000);
});
