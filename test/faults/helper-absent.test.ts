// Kamailio runs without its helper (never started, as when kamailio-pusher-helper.service is down): a call to
// a sleeping phone is answered at once (well within t2), no push is attempted, and Kamailio says why in one
// error line, not one per call.
import { afterAll, beforeAll, expect, it } from "vitest";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, invite, register } from "./support/sip-client";
import { callItems, SeparateServices, separateServices } from "./support/processes";

const T2_MS = 4000;
const CALLS = 5;
const TOKEN = "ab01ab01ab01ab01ab01ab01ab01ab01";

let apns: MockApns;
let services: SeparateServices;
/** The caller, and the sleeping phone on its own address. */
let client: SipClient;
let phone: SipClient;

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  services = await separateServices({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
    timers: { pushWaitMs: T2_MS },
  });
  await services.startKamailio(); // and never the helper
  client = await SipClient.open(services.sipPort);
  phone = await SipClient.open(services.sipPort);
}, 30000);

afterAll(async () => {
  client?.close();
  phone?.close();
  await services?.stop();
  await apns?.close();
});

it("answers every call to a sleeping phone within t2 and logs one clear error, not one per call", async () => {
  // A token APNs would accept: had a push gone out, it would have succeeded (and been recorded).
  apns.addDevice(TOKEN, { bundle: APP_ID, kind: "voip" });
  const registered = await phone.send(register(phone, "sleeper", DOMAIN, pushParams(TOKEN))).final;
  expect(registered?.status).toBe(200);
  expect(services.rpc("htable.dump", "pusher_devices")).toContain(TOKEN);
  services.rpc("ul.rm", "location", `sleeper@${DOMAIN}`); // the phone sleeps: record kept, binding gone

  const calls = [];
  for (let i = 0; i < CALLS; i++) {
    calls.push(client.send(invite(client, "sleeper", DOMAIN)));
    await calls[i].final;
  }
  const lateness = calls.map((call) => call.finals()[0].atMs - call.sentAtMs);
  expect(calls.map((call) => call.finals().map((answer) => answer.status))).toEqual(Array(CALLS).fill([480]));
  expect(Math.max(...lateness)).toBeLessThan(T2_MS);
  expect(apns.requests).toHaveLength(0);
  const errors = services.kamailioOutput().match(/ERROR:.*no push helper is connected.*/g) ?? [];
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(/start pusher-helper/);
  expect(callItems(services.rpc)).toEqual([]); // answered, never held: nothing kept
  console.log(
    `[faults] helper never started: ${CALLS}/${CALLS} calls got 480 within ${Math.max(...lateness)} ms, ${errors.length} error line`,
  );
});
