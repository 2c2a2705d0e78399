// What the end-to-end call tests share: the product started with a mock APNs, phones that register with
// Kazoo-style push params, callers, and waits on what the mock receives.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { freePort } from "./free-port";
import { MockApns } from "./mock-apns";
import { PusherProcess, startPusher, TEST_CA_DIR } from "./pusher-process";
import { phoneKeys, runSipp, SippRun } from "./sipp";

export const APP_ID = "com.app.mymobileapp";
export const USER_AGENT = "MyMobileApp iOS 1.0";

export interface WakeFixture {
  apns: MockApns;
  pusher: PusherProcess;
  stop(): Promise<void>;
}

export async function startWakeFixture(config: Record<string, unknown>): Promise<WakeFixture> {
  const apns = await MockApns.start({ caDir: TEST_CA_DIR });
  const pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    apps: { [APP_ID]: { apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: `127.0.0.1:${apns.port}` } } },
    ...config,
  });
  return {
    apns,
    pusher,
    async stop() {
      await pusher.stop();
      await apns.close();
    },
  };
}

let userCounter = 0;

/** A user name no other test (or test file running beside this one) uses. */
export function uniqueUser(): string {
  userCounter += 1;
  return `user_${process.pid}_${userCounter}`;
}

export function pushParams(token: string, instance?: string): string {
  const instanceParam = instance ? `;+sip.instance="<urn:uuid:${instance}>"` : "";
  return `${instanceParam};app-id=${APP_ID};pn-tok=${token};pn-type=apple`;
}

export function callKeys(callee: string): Record<string, string> {
  return { callee, caller: "15551234567", domain: "127.0.0.1" };
}

/** One REGISTER from a free port whose Contact points at `contactPort` (default: the same port). */
export async function registerPhone(
  pusher: PusherProcess,
  user: string,
  params: string,
  options: { contactPort?: number; userAgent?: string } = {},
): Promise<number> {
  const port = await freePort();
  const keys = phoneKeys(user, options.contactPort ?? port, params, options.userAgent ?? USER_AGENT);
  const run = await runSipp({ scenario: "register.xml", remotePort: pusher.sipPort, localPort: port, keys });
  expect(run.code, run.output).toBe(0);
  return port;
}

/**
 * Registers many phones from one sipp (register-many.xml, an injection file of `user;token` lines written to
 * `dir`), at most 50 in flight, and returns the run for the caller to check.
 */
export async function registerManyPhones(sipPort: number, dir: string, phones: { user: string; token: string }[]): Promise<SippRun> {
  const injectionFile = join(dir, "phones.csv");
  writeFileSync(injectionFile, ["SEQUENTIAL", ...phones.map((phone) => `${phone.user};${phone.token}`)].join("\n") + "\n");
  return runSipp({
    scenario: "register-many.xml",
    remotePort: sipPort,
    keys: { domain: "127.0.0.1", app_id: APP_ID, user_agent: USER_AGENT },
    injectionFile,
    calls: phones.length,
    rate: 500,
    maxConcurrent: 50,
    timeoutSeconds: 60,
  });
}

/** Removes the user's SIP bindings, as when a sleeping phone's registration lapsed; device records stay. */
export function dropBindings(pusher: PusherProcess, user: string): void {
  pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
}

export async function waitForPushes(apns: MockApns, token: string, count = 1, timeoutMs = 8000, pusher?: PusherProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (apns.requestsFor(token).length < count) {
    if (Date.now() > deadline) {
      const log = pusher ? `; pusher output:\n${pusher.output().slice(-4000)}` : "";
      throw new Error(`expected ${count} push(es) for ${token}, got ${apns.requestsFor(token).length}${log}`);
    }
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A phone's listening side: sipp as UAS on a free port running `scenario` for `calls` INVITEs. */
export async function listeningPhone(pusher: PusherProcess, scenario: string, calls = 1): Promise<{ port: number; run: Promise<SippRun> }> {
  const port = await freePort();
  const run = runSipp({ scenario, remotePort: pusher.sipPort, localPort: port, keys: {}, calls });
  await new Promise((done) => setTimeout(done, 100)); // let sipp bind its socket
  return { port, run };
}
