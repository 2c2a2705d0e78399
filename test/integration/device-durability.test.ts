// Device records survive a crash: Kamailio is killed with SIGKILL right after the last of 1000 REGISTERs got
// its 200 OK, started again on the same state directory, and every record is there (read over RPC). The phones
// are users of the named domain with Contact users unlike theirs (register-many.xml), sharing one address.
import { afterAll, beforeAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, registerManyPhones } from "../support/wake-fixture";

const PHONES = 1000;

let pusher: PusherProcess;

function tokenOf(index: number): string {
  return `d0${index.toString(16).padStart(6, "0")}aabbccddeeff00112233`;
}

function userOf(index: number): string {
  return `crash_${index}`;
}

function itemsIn(table: string): number {
  const stats = pusher.rpc("htable.stats");
  const match = new RegExp(`name: ${table}\\s+slots: \\d+\\s+all: (\\d+)`).exec(stats);
  if (!match) throw new Error(`no stats for ${table}:\n${stats}`);
  return Number(match[1]);
}

beforeAll(async () => {
  pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: "127.0.0.1:9" } } },
  });
}, 30000);

afterAll(async () => {
  await pusher?.stop();
});

it("keeps every device record through a kill -9 right after the last REGISTER's 200 OK", async () => {
  const phones = Array.from({ length: PHONES }, (_, i) => ({ user: userOf(i), token: tokenOf(i) }));
  const run = await registerManyPhones(pusher.sipPort, pusher.dir, phones);
  expect(run.code, run.output.slice(-3000)).toBe(0);
  await pusher.crashKamailio(); // no graceful shutdown: htable's own dbmode would have written nothing

  pusher = await pusher.restart();
  await pusher.waitFor(new RegExp(`device records loaded from the database: ${PHONES} devices of ${PHONES} AORs`));
  expect(itemsIn("pusher_devices")).toBe(PHONES);
  expect(itemsIn("pusher_tokens")).toBe(PHONES);

  const last = PHONES - 1;
  const listed = JSON.parse(
    execFileSync(
      process.execPath,
      [
        join(ROOT, "dist", "cli.js"),
        "--config",
        pusher.configPath,
        "devices",
        `${userOf(last)}@${DOMAIN}`,
        "--json",
        "--show-tokens",
      ],
      {
        encoding: "utf8",
      },
    ),
  );
  expect(listed.map((device: { token: string; appId: string }) => [device.appId, device.token])).toEqual([
    [APP_ID, tokenOf(last)],
  ]);
}, 120000);
