// An operator's kamailio.cfg with its own event routes of the names pusher.cfg uses (htable:mod-init,
// core:worker-one-init, evapi:*): it defines the PUSHER_SKIP_* switches and calls pusher.cfg's public routes from
// its own event routes, as pusher.cfg's header says. Kamailio refuses a cfg that defines an event route twice,
// so without the switches this cfg does not start. Kamailio and the helper run as two services, the helper
// against a mock APNs.
import { afterAll, beforeAll, expect, it } from "vitest";
import { appendFileSync, copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, invite, register } from "../faults/support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "../faults/support/processes";

const T2_MS = 10000;
/** A token APNs never issued: both hosts refuse it, so every push of the call fails. */
const UNKNOWN_TOKEN = "0bad0bad0bad0bad0bad0bad0bad0bad";
const EVENT_ROUTES: { [event: string]: string } = {
  "htable:mod-init": "PUSHER_HTABLE_INIT",
  "core:worker-one-init": "PUSHER_WORKER_INIT",
  "evapi:connection-new": "PUSHER_EVAPI_CONNECTION_NEW",
  "evapi:connection-closed": "PUSHER_EVAPI_CONNECTION_CLOSED",
  "evapi:message-received": "PUSHER_EVAPI_MESSAGE_RECEIVED",
};
const SKIPS = {
  PUSHER_SKIP_HTABLE_INIT: true,
  PUSHER_SKIP_WORKER_INIT: true,
  PUSHER_SKIP_EVAPI_CONNECTION_NEW: true,
  PUSHER_SKIP_EVAPI_CONNECTION_CLOSED: true,
  PUSHER_SKIP_EVAPI_MESSAGE_RECEIVED: true,
} as const;

let apns: MockApns;
let services: SeparateServices;
let client: SipClient;
let phone: SipClient;

/** kamailio/kamailio.cfg and pusher.cfg copied to `dir`, with the operator's event routes appended. */
function operatorCfg(dir: string): string {
  const cfg = join(dir, "kamailio.cfg");
  copyFileSync(join(ROOT, "kamailio", "kamailio.cfg"), cfg);
  copyFileSync(join(ROOT, "kamailio", "pusher.cfg"), join(dir, "pusher.cfg"));
  for (const [event, route] of Object.entries(EVENT_ROUTES)) {
    appendFileSync(
      cfg,
      `\nevent_route[${event}] {\n\txlog("L_INFO", "operator: own ${event}\\n");\n\troute(${route});\n}\n`,
    );
  }
  return cfg;
}

function stateItem(name: string): string {
  return /value:\s*(\S+)/.exec(services.rpc("htable.get", "pusher_state", name))?.[1] ?? "";
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  services = await separateServices(
    {
      userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
      apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
      timers: { pushWaitMs: T2_MS },
    },
    { cfg: operatorCfg(mkdtempSync(join(tmpdir(), "operator-cfg-"))) },
  );
  await services.startKamailio(SKIPS);
  services.startHelper();
  await waitUntil(() => /pusher: helper connected/.test(services.kamailioOutput()), 10000, "the helper's hello");
  client = await SipClient.open(services.sipPort);
  phone = await SipClient.open(services.sipPort);
}, 30000);

afterAll(async () => {
  client?.close();
  phone?.close();
  await services?.stop();
  await apns?.close();
});

it("starts with pusher.cfg's init routes run from the operator's own event routes", async () => {
  const log = services.kamailioOutput();
  expect(log).toContain("operator: own htable:mod-init");
  expect(log).toContain("operator: own core:worker-one-init");
  // Before any SIP request: only the worker init route takes the load at start (rtimer pusher_load runs it).
  await waitUntil(
    () => /device records loaded from the database: 0 devices of 0 AORs/.test(services.kamailioOutput()),
    5000,
    "the load of the device records at start",
  );
  expect(stateItem("config_generation")).toBe("1");
  expect(stateItem("reject_unsupported")).toBe("1");
});

it("counts the helper's connection and hands its push results to the plugin through the operator's evapi routes", async () => {
  expect(services.kamailioOutput()).toContain("operator: own evapi:connection-new");
  expect(services.kamailioOutput()).toContain("pusher: helper link up from 127.0.0.1");
  expect(stateItem("helper_connections")).toBe("1");

  const registered = await phone.send(register(phone, "operator", DOMAIN, pushParams(UNKNOWN_TOKEN))).final;
  expect(registered?.status).toBe(200);
  services.rpc("ul.rm", "location", `operator@${DOMAIN}`); // the phone sleeps: record kept, binding gone
  const call = client.send(invite(client, "operator", DOMAIN));
  const final = await call.final;
  // The helper's report that the push failed came in through evapi:message-received: 480 at once, not at t2.
  expect(final?.status).toBe(480);
  expect(call.finals()[0].atMs - call.sentAtMs).toBeLessThan(T2_MS / 2);
  expect(services.kamailioOutput()).toContain("operator: own evapi:message-received");
});

it("counts the helper's disconnection through the operator's evapi:connection-closed", async () => {
  const helper = services.helper!;
  const exited = new Promise<void>((done) => helper.on("exit", () => done()));
  helper.kill("SIGTERM");
  await exited;
  await waitUntil(() => /pusher: helper link down/.test(services.kamailioOutput()), 5000, "the link down line");
  expect(services.kamailioOutput()).toContain("operator: own evapi:connection-closed");
  expect(stateItem("helper_connections")).toBe("0");
});
