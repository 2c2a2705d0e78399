// Digest authentication of REGISTERs in the reference cfg (sip.auth) and Kazoo's one-time registration token.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { ROOT } from "../support/pusher-process";
import { phoneKeys, runSipp } from "../support/sipp";
import {
  WakeFixture,
  callKeys,
  dropBindings,
  listeningPhone,
  pushParams,
  startWakeFixture,
  uniqueUser,
  waitForPushes,
} from "../support/wake-fixture";

const TOKEN_LIFETIME_S = 2;

let fixture: WakeFixture;

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", fixture.pusher.configPath, ...args], { encoding: "utf8" });
}

function devices(): string {
  return fixture.pusher.rpc("htable.dump", "pusher_devices");
}

async function register(scenario: string, user: string, params: string, options: { auth?: { user: string; password: string }; token?: string; contactPort?: number } = {}) {
  const port = await freePort();
  const keys = { ...phoneKeys(user, options.contactPort ?? port, params, "MyMobileApp iOS 1.0"), token: options.token ?? "" };
  return runSipp({ scenario, remotePort: fixture.pusher.sipPort, localPort: port, keys, auth: options.auth });
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
    const alice = uniqueUser();
    const mallory = uniqueUser();
    cli("users", "add", `${alice}@127.0.0.1`, "alice-secret");
    cli("users", "add", `${mallory}@127.0.0.1`, "mallory-secret");
    expect(cli("users", "list")).toContain(`${alice}@127.0.0.1`);

    const unauthenticated = await register("register.xml", alice, pushParams("aa11"));
    expect(unauthenticated.code).not.toBe(0); // challenged, never 200
    expect(devices()).not.toContain(`${alice}@127.0.0.1`);

    const good = await register("register-auth.xml", alice, pushParams("aa11"), { auth: { user: alice, password: "alice-secret" } });
    expect(good.code, good.output).toBe(0);
    expect(devices()).toContain("aa11");

    const wrongPassword = await register("register-auth-refused.xml", alice, pushParams("bb22"), { auth: { user: alice, password: "guess" } });
    expect(wrongPassword.code, wrongPassword.output).toBe(0);
    const otherUser = await register("register-auth-refused.xml", alice, pushParams("cc33"), { auth: { user: mallory, password: "mallory-secret" } });
    expect(otherUser.code, otherUser.output).toBe(0);
    const removal = await register("register.xml", alice, ";expires=0");
    expect(removal.code).not.toBe(0);

    const table = devices();
    expect(table).toContain("aa11");
    expect(table).not.toContain("bb22");
    expect(table).not.toContain("cc33");
  });
});

describe("the one-time registration token of a push", () => {
  async function heldCallToken(user: string, password: string, token: string): Promise<{ registrationToken: string; caller: ReturnType<typeof runSipp> }> {
    cli("users", "add", `${user}@127.0.0.1`, password);
    const registered = await register("register-auth.xml", user, pushParams(token), { auth: { user, password } });
    expect(registered.code, registered.output).toBe(0);
    dropBindings(fixture.pusher, user);
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: fixture.pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(fixture.apns, token);
    const body = fixture.apns.requestsFor(token)[0].body as Record<string, unknown>;
    expect(body["registration-token"]).toMatch(/^[0-9a-f-]{36}$/);
    return { registrationToken: body["registration-token"] as string, caller };
  }

  it("lets the woken phone register without credentials once, only for its own AOR", async () => {
    const user = uniqueUser();
    const other = uniqueUser();
    cli("users", "add", `${other}@127.0.0.1`, "other-secret");
    const { registrationToken, caller } = await heldCallToken(user, "user-secret", "dd44");

    const forOther = await register("register-token-refused.xml", other, "", { token: registrationToken });
    expect(forOther.code, forOther.output).toBe(0); // another AOR: challenged like any REGISTER

    const phone = await listeningPhone(fixture.pusher, "answer.xml");
    const accepted = await register("register-token.xml", user, pushParams("dd44"), { token: registrationToken, contactPort: phone.port });
    expect(accepted.code, accepted.output).toBe(0);
    expect((await caller).code).toBe(0); // the held call reached the woken phone
    expect((await phone.run).code).toBe(0);

    const again = await register("register-token-refused.xml", user, pushParams("dd44"), { token: registrationToken });
    expect(again.code, again.output).toBe(0); // used once: challenged now
  });

  it("refuses a token after its lifetime", async () => {
    const user = uniqueUser();
    const { registrationToken, caller } = await heldCallToken(user, "user-secret", "ee55");
    await new Promise((done) => setTimeout(done, (TOKEN_LIFETIME_S + 1) * 1000));
    const late = await register("register-token-refused.xml", user, pushParams("ee55"), { token: registrationToken });
    expect(late.code, late.output).toBe(0);
    await caller; // ends at t2 with 480; not awaited for its outcome here
  });
});
