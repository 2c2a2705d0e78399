// Kamailio is killed (SIGKILL, every process) right after 1000 REGISTERs were answered, while the helper runs
// on as its own service: after Kamailio restarts, all 1000 device records are there, the helper has reconnected
// by itself, and the next call to one of the phones is pushed.
import { afterAll, beforeAll, expect, it } from "vitest";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, registerManyPhones, waitForPushes } from "../support/wake-fixture";
import { SipClient, invite } from "./support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "./support/processes";

const PHONES = 1000;

let apns: MockApns;
let services: SeparateServices;
let client: SipClient;

function tokenOf(index: number): string {
  return `e0${index.toString(16).padStart(6, "0")}aabbccddeeff00112233`;
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  services = await separateServices({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
    timers: { pushWaitMs: 2000 },
  });
  await services.startKamailio();
  services.startHelper();
  await waitUntil(() => /pusher: helper connected/.test(services.kamailioOutput()), 10000, "the helper's hello");
}, 30000);

afterAll(async () => {
  client?.close();
  await services?.stop();
  await apns?.close();
});

it("keeps 1000 device records through kill -9 and the helper reconnects by itself", async () => {
  const phones = Array.from({ length: PHONES }, (_, i) => ({ user: `kcrash_${i}`, token: tokenOf(i) }));
  // PushKit tokens APNs issued: the call after the restart is accepted at the first host asked.
  for (const phone of phones) apns.addDevice(phone.token, { bundle: APP_ID, kind: "voip" });
  const run = await registerManyPhones(services.sipPort, services.dir, phones);
  expect(run.code, run.output.slice(-2000)).toBe(0);
  const helperPid = services.helper!.pid;
  await services.killKamailio();
  await waitUntil(
    () => /link: connection to Kamailio closed/.test(services.helperOutput()),
    5000,
    "the helper to see the link drop",
  );

  const restartedAtMs = Date.now();
  await services.startKamailio();
  await waitUntil(
    () =>
      new RegExp(`device records loaded from the database: ${PHONES} devices of ${PHONES} AORs`).test(
        services.kamailioOutput(),
      ),
    10000,
    "the records to load",
  );
  // The first run's "helper connected" is still in the output: wait for the helper's second connect.
  await waitUntil(
    () => (services.helperOutput().match(/link: connected to Kamailio/g) || []).length >= 2,
    10000,
    "the helper to reconnect",
  );
  const reconnectMs = Date.now() - restartedAtMs;
  expect(services.helper!.pid).toBe(helperPid);
  expect(services.helper!.exitCode).toBeNull();
  expect(services.helperOutput().match(/link: connected to Kamailio/g)).toHaveLength(2);
  expect(services.rpc("htable.stats")).toMatch(new RegExp(`name: pusher_devices\\s+slots: \\d+\\s+all: ${PHONES}\\b`));

  // The bindings died with Kamailio (usrloc in memory): the phone sleeps, so the call is pushed and held.
  client = await SipClient.open(services.sipPort);
  const call = client.send(invite(client, "kcrash_777", DOMAIN));
  await waitForPushes(apns, tokenOf(777), 1, 5000);
  expect(apns.requests.map((request) => `${request.token} ${request.status}`)).toEqual([`${tokenOf(777)} 200`]);
  expect((await call.final)?.status).toBe(480);
  console.log(
    `[faults] kamailio killed after ${PHONES} REGISTERs: ${PHONES}/${PHONES} records back, helper reconnected ${reconnectMs} ms after the restart began`,
  );
}, 120000);
