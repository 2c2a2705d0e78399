// The device records' PostgreSQL hangs (every process of the server stopped with SIGSTOP: connections are accepted
// by the kernel and never answered, queries never return), the slow case of docs/cluster.md "Database": the first
// REGISTER that writes waits for db_postgres's timeouts (pusher.cfg PUSHER_DB_TIMEOUT_SECONDS, PUSHER_DB_RETRIES:
// at most 10 s with their defaults) and is answered; the database is then held, so the REGISTERs after it are
// answered without waiting for it. When the server runs again the timer writes every record. The fast cases (the
// database down, never reachable) are in test/kamailio/device-database-down.test.ts.
import { afterAll, beforeAll, expect, it } from "vitest";
import { join } from "node:path";
import { startPostgres, type PostgresServer } from "../support/postgres";
import { TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, register } from "./support/sip-client";
import { waitUntil as pollUntil } from "../support/wait-until";
import { SeparateServices, separateServices } from "./support/processes";

// pusher.cfg's bound with its defaults: PUSHER_DB_TIMEOUT_SECONDS 2 × (1 + 2 × (PUSHER_DB_RETRIES 1 + 1)) = 10 s.
// A REGISTER gets its answer within it (and some slack for the machine), or none: the test fails.
// Every 100 ms: the checks spawn psql, kamcmd or the CLI.
const waitUntil = (check: () => boolean, timeoutMs: number, what: string | (() => string)) =>
  pollUntil(check, timeoutMs, what, 100);

const WORST_WAIT_MS = 10_000;
const ANSWER_TIMEOUT_MS = WORST_WAIT_MS + 3000;
const PHONES = 10;

let postgres: PostgresServer;
let services: SeparateServices;
let phone: SipClient;

function tokenOf(user: string): string {
  return Buffer.from(user).toString("hex").padEnd(64, "0");
}

beforeAll(async () => {
  postgres = await startPostgres();
  services = await separateServices(
    {
      userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
      apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: "127.0.0.1:9" } } },
    },
    { deviceDatabaseUrl: postgres.url },
  );
  await services.startKamailio();
  phone = await SipClient.open(services.sipPort);
}, 60000);

afterAll(async () => {
  phone?.close();
  await services?.stop();
  postgres?.stop();
});

it("answers REGISTERs while PostgreSQL hangs, each within the driver's timeouts, and writes them when it runs again", async () => {
  const answer = async (user: string) =>
    (await phone.send(register(phone, user, DOMAIN, pushParams(tokenOf(user))), { timeoutMs: ANSWER_TIMEOUT_MS }).final)
      ?.status;
  expect(await answer("running")).toBe(200);
  expect(postgres.query("SELECT count(*) FROM pusher_devices").trim()).toBe("1");

  postgres.freeze();
  try {
    // The first waits for the timeouts; then the database is held.
    expect(await answer("hang0")).toBe(200);
    const users = Array.from({ length: PHONES }, (_, i) => `hang${i + 1}`);
    expect(await Promise.all(users.map(answer))).toEqual(users.map(() => 200));
    await waitUntil(
      () => /device database does not answer/.test(services.kamailioOutput()),
      WORST_WAIT_MS * 2,
      "the timer's probe to find it down",
    );
  } finally {
    postgres.thaw();
  }

  await waitUntil(
    () => Number(postgres.query("SELECT count(*) FROM pusher_devices").trim()) === PHONES + 2,
    WORST_WAIT_MS * 3,
    () => `the rows; Kamailio said:\n${services.kamailioOutput().slice(-3000)}`,
  );
  await waitUntil(
    () => /device database answers again after \d+ s: \d+ AORs written from memory/.test(services.kamailioOutput()),
    5000,
    "the log line",
  );
  expect(
    postgres.query("SELECT aor FROM pusher_devices WHERE aor LIKE 'hang%' ORDER BY aor").trim().split("\n"),
  ).toEqual(
    ["hang0", ...Array.from({ length: PHONES }, (_, i) => `hang${i + 1}`)].map((user) => `${user}@${DOMAIN}`).sort(),
  );
}, 120000);
