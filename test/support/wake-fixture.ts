// What the end-to-end call tests share: the product started with a mock APNs, phones of the test topology
// (topology.ts: named domains, their own loopback addresses, Contact users unlike their AOR users, some behind
// NAT or on TCP) that register with Kazoo-style push params, callers on their own addresses, and waits on what
// the mock receives.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { APP_ID } from "./app-id";
import { freePort } from "./free-port";
import { MockApns } from "./mock-apns";
import { PusherProcess, startPusher, TEST_CA_DIR } from "./pusher-process";
import { runSipp, SippRun } from "./sipp";
import { DOMAIN, nextAddress, Phone, uniqueName } from "./topology";

export { APP_ID };
export const USER_AGENT = "MyMobileApp iOS 1.0";
/** The caller's number and display name the call scenarios send. */
export const CALLER = { number: "15551234567", name: "Caller Name" };

export interface WakeFixture {
  apns: MockApns;
  pusher: PusherProcess;
  stop(): Promise<void>;
}

/** Starts the mock APNs and the product with APP_ID on it; `config.apps` adds apps (another provider's) beside it. */
export async function startWakeFixture(config: Record<string, unknown>): Promise<WakeFixture> {
  const apns = await MockApns.start({ caDir: TEST_CA_DIR });
  const { apps, ...rest } = config;
  const pusher = await startPusher({
    userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
    ...rest,
    apps: {
      [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) },
      ...(apps as Record<string, unknown> | undefined),
    },
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

/** A user name no other test (or test file running beside this one) uses. */
export function uniqueUser(): string {
  return uniqueName("user");
}

/** Kazoo's push params (Contact header params) for a PushKit token, with a +sip.instance when given. */
export function pushParams(token: string, instance?: string): string {
  const instanceParam = instance ? `;+sip.instance="<urn:uuid:${instance}>"` : "";
  return `${instanceParam};app-id=${APP_ID};pn-tok=${token};pn-type=apple`;
}

/** A PushKit token the mock APNs knows for APP_ID (production), as a Kazoo app registers it. */
export function voipToken(apns: MockApns): string {
  return apns.newDevice(APP_ID, "voip");
}

/** Keys of the caller scenarios (call-*.xml) for a call to `phone`'s AOR. */
export function callKeys(phone: Phone): Record<string, string> {
  return { callee: phone.user, caller: CALLER.number, domain: phone.domain };
}

export interface RegisterOptions {
  userAgent?: string;
  expires?: string;
  /** Push params inside the Contact URI (RFC 8599 style), next to `params` after it. */
  uriParams?: string;
  scenario?: string;
  /** Keys the scenario needs beyond the phone's. */
  keys?: Record<string, string>;
  /** Digest credentials for a scenario that answers a challenge (register-auth*.xml; sip.auth on). */
  auth?: { user: string; password: string };
}

/**
 * One REGISTER of `phone`'s device from a new socket on its address (a phone's signalling may leave from any
 * port; Via names that socket, or the NAT's private address). Its Contact is the phone's: INVITEs go to
 * phone.port (to the REGISTER's source port for a phone behind NAT). Returns the run; fails the test on non-zero.
 */
export async function registerPhone(
  pusher: PusherProcess,
  phone: Phone,
  params: string,
  options: RegisterOptions = {},
): Promise<SippRun> {
  const port = await freePort(phone.address);
  const run = await runSipp({
    scenario: options.scenario ?? "register.xml",
    remotePort: pusher.sipPort,
    remoteHost: pusher.sipHost,
    localIp: phone.address,
    localPort: port,
    transport: phone.transport,
    keys: phone.keys({
      via: phone.nat ? phone.advertisedAddress : `${phone.address}:${port}`,
      contact: phone.contact(params, options.uriParams ?? ""),
      user_agent: options.userAgent ?? USER_AGENT,
      expires: options.expires ?? "600",
      ...options.keys,
    }),
    auth: options.auth,
  });
  expect(run.code, run.output + pusher.output().slice(-3000)).toBe(0);
  return run;
}

/**
 * The phone itself registers from its own socket (phone.address:phone.port) and then answers the INVITE it
 * gets there (register-and-answer.xml): the only way for a phone behind NAT or on TCP to get a call. sipp
 * hands the INVITE only to the call with the same Call-ID, so the caller must use `callId` too.
 */
export function registerAndAnswer(
  pusher: PusherProcess,
  phone: Phone,
  params: string,
  callId: string,
  options: RegisterOptions = {},
): Promise<SippRun> {
  return runSipp({
    scenario: options.scenario ?? "register-and-answer.xml",
    remotePort: pusher.sipPort,
    remoteHost: pusher.sipHost,
    localIp: phone.address,
    localPort: phone.port,
    transport: phone.transport,
    callId,
    keys: phone.keys({
      contact: phone.contact(params, options.uriParams ?? ""),
      user_agent: options.userAgent ?? USER_AGENT,
      expires: options.expires ?? "600",
      ...options.keys,
    }),
    auth: options.auth,
  });
}

/** A Call-ID for a caller and the phone that answers it (see registerAndAnswer). */
export function sharedCallId(phone: Phone): string {
  return `${uniqueName("call")}@${phone.address}`;
}

/** A caller on its own loopback address runs `scenario` (call-*.xml) towards `phone`'s AOR. */
export function call(
  pusher: PusherProcess,
  phone: Phone,
  scenario: string,
  options: { callId?: string; transport?: "udp" | "tcp"; keys?: Record<string, string>; timeoutSeconds?: number } = {},
): Promise<SippRun> {
  return runSipp({
    scenario,
    remotePort: pusher.sipPort,
    remoteHost: pusher.sipHost,
    localIp: nextAddress(),
    transport: options.transport,
    callId: options.callId,
    timeoutSeconds: options.timeoutSeconds,
    keys: { ...callKeys(phone), ...options.keys },
  });
}

/**
 * Registers many phones from one sipp (register-many.xml, an injection file of `user;token` lines written to
 * `dir`), at most 50 in flight, and returns the run for the caller to check. Bulk load shares one address but
 * keeps the named domain and distinct Contact users.
 */
export async function registerManyPhones(
  sipPort: number,
  dir: string,
  phones: { user: string; token: string }[],
  domain = DOMAIN,
): Promise<SippRun> {
  const injectionFile = join(dir, "phones.csv");
  writeFileSync(
    injectionFile,
    ["SEQUENTIAL", ...phones.map((phone) => `${phone.user};${phone.token}`)].join("\n") + "\n",
  );
  return runSipp({
    scenario: "register-many.xml",
    remotePort: sipPort,
    localIp: nextAddress(),
    keys: { domain, app_id: APP_ID, user_agent: USER_AGENT },
    injectionFile,
    calls: phones.length,
    rate: 500,
    maxConcurrent: 50,
    timeoutSeconds: 60,
  });
}

/** Removes the AOR's SIP bindings, as when a sleeping phone's registration lapsed; device records stay. */
export function dropBindings(pusher: PusherProcess, phone: Phone): void {
  pusher.rpc("ul.rm", "location", phone.aor);
}

export async function waitForPushes(
  apns: MockApns,
  token: string,
  count = 1,
  timeoutMs = 8000,
  pusher?: PusherProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (apns.requestsFor(token).length < count) {
    if (Date.now() > deadline) {
      const log = pusher ? `; pusher output:\n${pusher.output().slice(-4000)}` : "";
      throw new Error(`expected ${count} push(es) for ${token}, got ${apns.requestsFor(token).length}${log}`);
    }
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A phone's listening side: sipp as UAS on phone.address:phone.port running `scenario` for `calls` INVITEs. */
export async function listeningPhone(
  pusher: PusherProcess,
  phone: Phone,
  scenario: string,
  calls = 1,
): Promise<{ run: Promise<SippRun> }> {
  const run = runSipp({
    scenario,
    remotePort: pusher.sipPort,
    remoteHost: pusher.sipHost,
    localIp: phone.address,
    localPort: phone.port,
    transport: phone.transport,
    keys: phone.keys(),
    calls,
  });
  await new Promise((done) => setTimeout(done, 100)); // let sipp bind its socket
  return { run };
}

/** The team id RFC 8599 `pn-param` names in the tests (TeamID.BundleID[.voip]). */
export const TEAM_ID = "ABCDE12345";

/** RFC 8599 push params for the Contact URI: an APP_ID alert token, or with kind "voip" a PushKit token. */
export function rfc8599AppleParams(token: string, kind: "alert" | "voip" = "alert"): string {
  return `;pn-provider=apns;pn-prid=${token};pn-param=${TEAM_ID}.${APP_ID}${kind === "voip" ? ".voip" : ""}`;
}

/** A counter of htable pusher_stats (`pusher metrics`' Kamailio side), 0 while it is absent. */
export function kamailioCounter(pusher: PusherProcess, name: string): number {
  try {
    return Number(/value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_stats", name))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
