// The device records in PostgreSQL instead of sqlite (pusher.cfg's PUSHER_DB_CONNECTION with a postgres:// URL and
// PUSHER_DB_MODULE db_postgres.so): the plugin's statements are ones PostgreSQL accepts too, sqlite's PRAGMAs are
// not sent to it, and a record written before Kamailio restarts is loaded back and pushed to. A throwaway cluster
// on its own port (test/support/postgres.ts); Kamailio and the helper run as the two services do.
import { afterAll, beforeAll, expect, it } from "vitest";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { startPostgres, type PostgresServer } from "../support/postgres";
import { TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, invite, register } from "../faults/support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "../faults/support/processes";

// A quote in the AOR's user and a backslash in the User-Agent the record keeps: strings are escaped by doubling `'`
// only, and PostgreSQL (standard_conforming_strings) reads a backslash as itself, as sqlite does.
const USER = "o'neil";
const USER_AGENT = "MyMobileApp iOS 1.0 \\o/";
const TOKEN = "0e11000000000000000000000000009a";

let postgres: PostgresServer;
let apns: MockApns;
let services: SeparateServices;
let phone: SipClient;

beforeAll(async () => {
  postgres = await startPostgres();
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  apns.addDevice(TOKEN, { bundle: APP_ID, kind: "voip" });
  services = await separateServices(
    {
      userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
      apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
      calls: { strategy: "push-first" },
      timers: { pushWaitMs: 2000 },
    },
    { deviceDatabaseUrl: postgres.url },
  );
  await services.startKamailio();
  services.startHelper();
  await waitUntil(() => /pusher: helper connected/.test(services.kamailioOutput()), 10000, "the helper");
  phone = await SipClient.open(services.sipPort);
}, 60000);

afterAll(async () => {
  phone?.close();
  await services?.stop();
  await apns?.close();
  postgres?.stop();
});

it("stores a REGISTER's device in PostgreSQL, loads it back after a restart and pushes the next call", async () => {
  expect(
    (await phone.send(register(phone, USER, DOMAIN, pushParams(TOKEN), { userAgent: USER_AGENT })).final)?.status,
  ).toBe(200);
  const row = postgres.query("SELECT aor, devices FROM pusher_devices").trim();
  expect(row.slice(0, row.indexOf("|"))).toBe(`${USER}@${DOMAIN}`);
  expect(Object.values(JSON.parse(row.slice(row.indexOf("|") + 1)))).toEqual([
    expect.objectContaining({ token: TOKEN, userAgent: USER_AGENT }),
  ]);
  // The same REGISTER again updates the row in place (ON CONFLICT … DO UPDATE), never a second one.
  expect(
    (await phone.send(register(phone, USER, DOMAIN, pushParams(TOKEN), { userAgent: USER_AGENT, expires: 900 })).final)
      ?.status,
  ).toBe(200);
  expect(postgres.query("SELECT count(*) FROM pusher_devices").trim()).toBe("1");

  await services.killKamailio();
  await services.startKamailio();
  await waitUntil(
    () => /device records loaded from the database: 1 devices of 1 AORs/.test(services.kamailioOutput()),
    10000,
    "the record to load",
  );
  await waitUntil(
    () => (services.kamailioOutput().match(/pusher: helper connected/g) ?? []).length >= 2,
    10000,
    "the helper to reconnect",
  );
  // The binding died with Kamailio (usrloc in memory): the phone sleeps, so the call is pushed from the record.
  const call = phone.send(invite(phone, USER, DOMAIN));
  await waitUntil(() => apns.requestsFor(TOKEN).length === 1, 5000, "the push");
  expect(apns.requestsFor(TOKEN)[0].status).toBe(200);
  expect((await call.final)?.status).toBe(480);
  // Every statement went through: none refused, no sqlite PRAGMA sent to PostgreSQL.
  expect(services.kamailioOutput()).not.toMatch(
    /not written to the database|not deleted from the database|PRAGMA|syntax error/,
  );
}, 60000);
