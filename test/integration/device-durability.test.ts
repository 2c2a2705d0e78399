// Device records survive a crash: Kamailio is killed with SIGKILL right after the last of 1000 REGISTERs got
// its 200 OK, started again on the same state directory, and every record is there (read over RPC).
import { afterAll, beforeAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PusherProcess, ROOT, startPusher, TEST_CA_DIR } from "../support/pusher-process";
import { runSipp } from "../support/sipp";

const APP_ID = "com.app.mymobileapp";
const USER_AGENT = "MyMobileApp iOS 1.0";
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
  const lines = ["SEQUENTIAL"];
  for (let i = 0; i < PHONES; i++) lines.push(`${userOf(i)};${tokenOf(i)}`);
  const injection = join(pusher.dir, "phones.csv");
  writeFileSync(injection, lines.join("\n") + "\n");

  const run = await runSipp({
    scenario: "register-many.xml",
    remotePort: pusher.sipPort,
    keys: { domain: "127.0.0.1", app_id: APP_ID, user_agent: USER_AGENT },
    injectionFile: injection,
    calls: PHONES,
    rate: 500,
    maxConcurrent: 50,
    timeoutSeconds: 60,
  });
  expect(run.code, run.output.slice(-3000)).toBe(0);
  await pusher.crashKamailio(); // no graceful shutdown: htable's own dbmode would have written nothing

  pusher = await pusher.restart();
  await pusher.waitFor(new RegExp(`device records loaded from the database: ${PHONES} devices of ${PHONES} AORs`));
  expect(itemsIn("pusher_devices")).toBe(PHONES);
  expect(itemsIn("pusher_tokens")).toBe(PHONES);

  const last = PHONES - 1;
  const listed = JSON.parse(
    execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", `${userOf(last)}@127.0.0.1`, "--json", "--show-tokens"], {
      encoding: "utf8",
    }),
  );
  expect(listed.map((device: { token: string; appId: string }) => [device.appId, device.token])).toEqual([[APP_ID, tokenOf(last)]]);
}, 120000);
