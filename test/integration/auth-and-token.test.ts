// Digest authentication of REGISTERs in the reference cfg (sip.auth) and Kazoo's one-time registration token.
// Users are on the named domain (the digest realm is the From domain: `pusher users add user@example.com`), each
// phone on its own loopback address with a Contact user unlike its AOR user (test/support/topology.ts).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { ROOT } from "../support/pusher-process";
import { runSipp, type SippRun } from "../support/sipp";
import { Phone, SECOND_DOMAIN } from "../support/topology";
import {
  APP_ID,
  USER_AGENT,
  WakeFixture,
  call,
  dropBindings,
  listeningPhone,
  pushParams,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";

const TOKEN_LIFETIME_S = 2;

let fixture: WakeFixture;

function cli(...args: string[]): string {
  return execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", fixture.pusher.configPath, ...args],
    { encoding: "utf8" },
  );
}

function devices(): string {
  return fixture.pusher.rpc("htable.dump", "pusher_devices");
}

/** A token the mock APNs knows (a PushKit token of APP_ID). */
function newToken(): string {
  return fixture.apns.newDevice(APP_ID);
}

/**
 * One REGISTER of `phone` running `scenario`, from a new socket on the phone's address (its Contact names the
 * phone's port); the run, for the test to judge (some scenarios expect a refusal).
 */
async function register(
  scenario: string,
  phone: Phone,
  params: string,
  options: { auth?: { user: string; password: string }; token?: string } = {},
): Promise<SippRun> {
  const port = await freePort(phone.address);
  const keys = phone.keys({
    via: `${phone.address}:${port}`,
    contact: phone.contact(params),
    user_agent: USER_AGENT,
    token: options.token ?? "",
  });
  return runSipp({
    scenario,
    remotePort: fixture.pusher.sipPort,
    localIp: phone.address,
    localPort: port,
    keys,
    auth: options.auth,
  });
}

beforeAll(async () => {
  fixture = await startWakeFixture({
    sip: { auth: true },
    calls: { registrationTokenSeconds: TOKEN_LIFETIME_S },
    kamailio: { defines: { PUSHER_TOKEN_SKIPS_AUTH: 1 } },
    timers: { pushWaitMs: 8000 },
  });
}, 30000);

afterAll(async () => fixture?.stop());

describe("REGISTERs with sip.auth on", () => {
  it("writes push records only from authenticated REGISTERs, and nobody else can touch them", async () => {
    const alice = await Phone.create();
    const mallory = await Phone.create();
    cli("users", "add", alice.aor, "alice-secret");
    cli("users", "add", mallory.aor, "mallory-secret");
    expect(cli("users", "list")).toContain(alice.aor);
    const [good, wrong, other] = [newToken(), newToken(), newToken()];

    const unauthenticated = await register("register.xml", alice, pushParams(good));
    expect(unauthenticated.code).not.toBe(0); // challenged, never 200
    expect(devices()).not.toContain(alice.aor);

    const authenticated = await register("register-auth.xml", alice, pushParams(good), {
      auth: { user: alice.user, password: "alice-secret" },
    });
    expect(authenticated.code, authenticated.output).toBe(0);
    expect(devices()).toContain(good);
    expect(fixture.pusher.rpc("ul.lookup", "location", alice.aor)).toContain(
      `sip:${alice.contactUser}@${alice.address}:${alice.port}`,
    );

    const wrongPassword = await register("register-auth-refused.xml", alice, pushParams(wrong), {
      auth: { user: alice.user, password: "guess" },
    });
    expect(wrongPassword.code, wrongPassword.output).toBe(0);
    const otherUser = await register("register-auth-refused.xml", alice, pushParams(other), {
      auth: { user: mallory.user, password: "mallory-secret" },
    });
    expect(otherUser.code, otherUser.output).toBe(0);
    const removal = await register("register.xml", alice, ";expires=0");
    expect(removal.code).not.toBe(0);

    // The same user name on another domain is another account (the realm is the domain): its password is no
    // good for alice@example.com, and its REGISTER writes only its own AOR's record.
    const twin = await Phone.create({ user: alice.user, domain: SECOND_DOMAIN });
    cli("users", "add", twin.aor, "twin-secret");
    const twinToken = newToken();
    const viaTwin = await register("register-auth-refused.xml", alice, pushParams(twinToken), {
      auth: { user: alice.user, password: "twin-secret" },
    });
    expect(viaTwin.code, viaTwin.output).toBe(0);
    const twinRegistered = await register("register-auth.xml", twin, pushParams(twinToken), {
      auth: { user: twin.user, password: "twin-secret" },
    });
    expect(twinRegistered.code, twinRegistered.output).toBe(0);

    const table = devices();
    expect(table).toContain(good);
    expect(table).not.toContain(wrong);
    expect(table).not.toContain(other);
    const item = (aor: string) =>
      new RegExp(`name: ${aor.replace(/\./g, "\\.")}\\s*\\n\\s*value: (.*)`).exec(table)?.[1] ?? "";
    expect(item(alice.aor)).toContain(good);
    expect(item(alice.aor)).not.toContain(twinToken);
    expect(item(twin.aor)).toContain(twinToken);
  });
});

describe("the one-time registration token of a push", () => {
  async function heldCallToken(
    phone: Phone,
    password: string,
    token: string,
  ): Promise<{ registrationToken: string; caller: Promise<SippRun> }> {
    cli("users", "add", phone.aor, password);
    const registered = await register("register-auth.xml", phone, pushParams(token), {
      auth: { user: phone.user, password },
    });
    expect(registered.code, registered.output).toBe(0);
    dropBindings(fixture.pusher, phone);
    const caller = call(fixture.pusher, phone, "call-answered.xml");
    await waitForPushes(fixture.apns, token, 1, 8000, fixture.pusher);
    const [push] = fixture.apns.requestsFor(token);
    expect(push.status).toBe(200);
    const body = push.body as Record<string, unknown>;
    expect(body["registration-token"]).toMatch(/^[0-9a-f-]{36}$/);
    return { registrationToken: body["registration-token"] as string, caller };
  }

  it("lets the woken phone register without credentials once, only for its own AOR", async () => {
    const phone = await Phone.create();
    const other = await Phone.create();
    const token = newToken();
    cli("users", "add", other.aor, "other-secret");
    const { registrationToken, caller } = await heldCallToken(phone, "user-secret", token);

    const forOther = await register("register-token-refused.xml", other, "", { token: registrationToken });
    expect(forOther.code, forOther.output).toBe(0); // another AOR: challenged like any REGISTER

    const listening = await listeningPhone(fixture.pusher, phone, "answer.xml");
    const accepted = await register("register-token.xml", phone, pushParams(token), { token: registrationToken });
    expect(accepted.code, accepted.output).toBe(0);
    expect((await caller).code).toBe(0); // the held call reached the woken phone
    const answered = await listening.run;
    expect(answered.code, answered.output).toBe(0);

    const again = await register("register-token-refused.xml", phone, pushParams(token), { token: registrationToken });
    expect(again.code, again.output).toBe(0); // used once: challenged now
  });

  it("refuses a token after its lifetime", async () => {
    const phone = await Phone.create();
    const token = newToken();
    const { registrationToken, caller } = await heldCallToken(phone, "user-secret", token);
    await new Promise((done) => setTimeout(done, (TOKEN_LIFETIME_S + 1) * 1000));
    const late = await register("register-token-refused.xml", phone, pushParams(token), { token: registrationToken });
    expect(late.code, late.output).toBe(0);
    await caller; // ends at t2 with 480; not awaited for its outcome here
  });
});
