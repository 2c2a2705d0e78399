// Benchmark 6, hostile requests: the Kamailio CPU of the worst REGISTER and the worst INVITE a client can send within
// the cfg's header limits (knobs PUSHER_MAX_CONTACT_BYTES and PUSHER_MAX_HEADER_BYTES: anything longer is answered
// 400 before the plugin runs), next to a normal one. The real product (`pusher start`, Kamailio and the helper,
// pushing to the bench APNs); every request goes to a new AOR, so the plugin does its whole work each time (never
// cfg's unchanged-REGISTER shortcut, never a per-AOR call limit). CPU is Kamailio's own (every kamailio process,
// from /proc), per request: `requests` of one kind at a time, alternated over `rounds`, medians.
// Hostile REGISTERs: 8 KB of Contact with hundreds of duplicated params, whitespace to repair and bytes that are not
// UTF-8; 16 contacts with push params (the most the plugin reads: 16 devices stored, 6 replaced); a 1 KB User-Agent
// of bytes that are not UTF-8 that no rule matches (decoded, hashed for its log mark, logged). Hostile INVITE: every
// caller id header 1 KB of bytes that are not UTF-8 with params, from a trusted source (all four are read); and a
// 54 KB P-Asserted-Identity, answered 400 by cfg. Goal: the worst at most 10 × the normal one (docs/benchmarks.md).
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { BenchApns } from "./lib/bench-apns";
import { kamailioCpuMs } from "./lib/kamailio-direct";
import { TEST_CA_DIR } from "./lib/paths";
import { startPusherRun, type PusherRun } from "./lib/pusher-run";
import { median, round } from "./lib/stats";
import { BENCH_APP_ID, BENCH_USER_AGENT, BENCH_USER_AGENT_REGEX } from "./register-cost";
import { DOMAIN, nextAddress } from "../test/support/topology";
import { SipClient, invite, register } from "../test/faults/support/sip-client";

export interface HostileCostOptions {
  /** Requests of each kind per round. */
  requests: number;
  rounds: number;
}

/** Kamailio CPU per request, µs, of each kind (medians over the rounds). */
export type CpuPerRequest = Record<string, number>;

export interface HostileCostResult {
  requests: number;
  rounds: number;
  registerCpuUs: CpuPerRequest;
  inviteCpuUs: CpuPerRequest;
  /** The costliest hostile REGISTER / the normal one. */
  hostileRegisterCpuRatio: number;
  hostileInviteCpuRatio: number;
  worstRegister: string;
  worstInvite: string;
}

/** Requests in flight at once: as fast as Kamailio answers, never a pile of retransmissions. */
const IN_FLIGHT = 50;
const TEAM_ID = "ABCDE12345";
/** t2: a held call's 480 comes after it; the INVITE figures include that answer, for every kind alike. */
const PUSH_WAIT_MS = 1000;
/** Bytes that are not UTF-8: each one a U+FFFD for the plugin to decode from Kamailio's hex. */
const NOT_UTF8 = "\xff\xfe";

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

function kazooParams(): string {
  return `;app-id=${BENCH_APP_ID};pn-tok=${hex(32)};pn-type=apple`;
}

type Maker = (client: SipClient, user: string) => string;

const REGISTERS: Record<string, Maker> = {
  normal: (client, user) => register(client, user, DOMAIN, kazooParams(), { userAgent: BENCH_USER_AGENT }),
  "8 KB Contact, duplicated params": (client, user) => {
    // A token with a space inside (cfg's Contact repair runs), 550 names given twice with other values, Latin-1.
    const duplicated = Array.from({ length: 550 }, (_, i) => `;x${i}=1;x${i}=2`).join("");
    return register(
      client,
      user,
      DOMAIN,
      `;app-id=${BENCH_APP_ID};pn-type=apple;pn-tok=${hex(16)} ${hex(15)};x-latin="caf${NOT_UTF8.repeat(40)}"${duplicated}`,
      { userAgent: BENCH_USER_AGENT },
    );
  },
  "16 contacts with push params": (client, user) => {
    const pad = "p".repeat(240);
    const contacts = Array.from(
      { length: 16 },
      (_, i) =>
        `<sip:c-${user}-${i}@${client.hostPort}>;+sip.instance="<urn:uuid:${hex(16)}>";pn-provider=apns;pn-param=${TEAM_ID}.${BENCH_APP_ID}.voip;pn-prid=${hex(32)};x-pad=${pad}`,
    );
    return register(client, user, DOMAIN, "", { userAgent: BENCH_USER_AGENT }).replace(
      /^Contact: .*$/m,
      `Contact: ${contacts.join(", ")}`,
    );
  },
  "1 KB User-Agent, not UTF-8, no rule": (client, user) =>
    register(client, user, DOMAIN, kazooParams(), { userAgent: `Hostile/${hex(4)} ${NOT_UTF8.repeat(500)}` }),
};

/** A caller id header's value of about 1 KB: a display name of bytes that are not UTF-8, then params. */
function hostileIdentity(number: string): string {
  return `"${NOT_UTF8.repeat(380)}" <sip:${number}@${DOMAIN};user=phone>${";x=1".repeat(45)}`;
}

const INVITES: Record<string, Maker> = {
  normal: (client, callee) => invite(client, callee, DOMAIN),
  "1 KB caller id headers, not UTF-8": (client, callee) =>
    invite(client, callee, DOMAIN, {
      fromDisplay: `"${NOT_UTF8.repeat(380)}"`,
      extraHeaders: [
        `Remote-Party-ID: ${hostileIdentity("+15550001")};party=calling`,
        `P-Asserted-Identity: ${hostileIdentity("+15550002")}`,
        `P-Preferred-Identity: ${hostileIdentity("+15550003")}`,
      ],
    }),
  "54 KB P-Asserted-Identity (answered 400)": (client, callee) =>
    invite(client, callee, DOMAIN, {
      extraHeaders: [
        `P-Asserted-Identity: "${NOT_UTF8.repeat(13000)}" <sip:+15550004@${DOMAIN}>${";x=1".repeat(7000)}`,
      ],
    }),
};

/** Sends one request per user, IN_FLIGHT at a time, and waits for every final answer; Kamailio CPU per request, µs. */
async function cpuPerRequest(
  pusher: PusherRun,
  client: SipClient,
  users: string[],
  make: Maker,
  expected: number[],
): Promise<number> {
  const before = kamailioCpuMs(pusher.pid);
  let next = 0;
  const unexpected: string[] = [];
  const worker = async () => {
    while (next < users.length) {
      const user = users[next++];
      const answer = await client.send(make(client, user), { timeoutMs: 30_000 }).final;
      if (!answer || !expected.includes(answer.status))
        unexpected.push(`${user}: ${answer ? `${answer.status} ${answer.reason}` : "no answer"}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  if (unexpected.length) {
    const problems = pusher
      .output()
      .split("\n")
      .filter((line) => /^\[kamailio\].*(ERROR|WARNING|CRITICAL)/.test(line));
    throw new Error(
      `bench: hostile: ${unexpected.length} unexpected answers, e.g. ${unexpected.slice(0, 3).join("; ")}; Kamailio's last errors:\n${problems.slice(-15).join("\n")}`,
    );
  }
  return ((kamailioCpuMs(pusher.pid) - before) * 1000) / users.length;
}

function worstOf(cpu: CpuPerRequest): string {
  return Object.keys(cpu)
    .filter((kind) => kind !== "normal")
    .reduce((worst, kind) => (cpu[kind] > cpu[worst] ? kind : worst));
}

export async function benchHostileCost(
  options: HostileCostOptions,
  log: (line: string) => void = () => {},
): Promise<HostileCostResult> {
  const apns = await BenchApns.start({ caDir: TEST_CA_DIR, record: false });
  const address = nextAddress();
  let pusher: PusherRun | null = null;
  let client: SipClient | null = null;
  const run = hex(3);
  try {
    pusher = await startPusherRun({
      timers: { inviteFirstMs: 2000, pushWaitMs: PUSH_WAIT_MS, afterWakeMs: 60_000 },
      // push-first: every INVITE is held and pushed; the sender is trusted, so all four caller id headers are read.
      calls: { strategy: "push-first", trustedSources: [`${address}/32`] },
      userAgents: [{ name: "MyMobileApp", regex: BENCH_USER_AGENT_REGEX }],
      apps: {
        [BENCH_APP_ID]: {
          apple: { certificateFile: join(TEST_CA_DIR, "apple-app.pem"), host: apns.host, sandboxHost: apns.host },
        },
      },
    });
    client = await SipClient.open(pusher.sipPort, { address });
    const usersOf = (kind: string, index: number, round_: number) =>
      Array.from({ length: options.requests }, (_, i) => `h${run}${kind}${index}r${round_}n${i}`);
    const samples: { register: Record<string, number[]>; invite: Record<string, number[]> } = {
      register: {},
      invite: {},
    };
    // A warm-up of every kind, not measured: the first runs of each code path cost more (Duktape, Kamailio).
    for (let round_ = -1; round_ < options.rounds; round_++) {
      const registerKinds = Object.keys(REGISTERS);
      for (const [index, kind] of registerKinds.entries()) {
        const cpu = await cpuPerRequest(pusher, client, usersOf("reg", index, round_), REGISTERS[kind], [200]);
        if (round_ >= 0) (samples.register[kind] ??= []).push(cpu);
      }
      const inviteKinds = Object.keys(INVITES);
      for (const [index, kind] of inviteKinds.entries()) {
        // Each call to a callee of its own with one push device (registered first, not measured).
        const callees = usersOf("inv", index, round_);
        await cpuPerRequest(pusher, client, callees, REGISTERS.normal, [200]);
        const refused = kind.includes("answered 400");
        const cpu = await cpuPerRequest(pusher, client, callees, INVITES[kind], refused ? [400] : [480]);
        if (round_ >= 0) (samples.invite[kind] ??= []).push(cpu);
      }
      if (round_ >= 0) log(`hostile: round ${round_ + 1} done`);
    }
    const medians = (byKind: Record<string, number[]>) =>
      Object.fromEntries(Object.entries(byKind).map(([kind, values]) => [kind, round(median(values), 0)]));
    const registerCpuUs = medians(samples.register);
    const inviteCpuUs = medians(samples.invite);
    const worstRegister = worstOf(registerCpuUs);
    const worstInvite = worstOf(inviteCpuUs);
    log(`hostile: REGISTER µs CPU ${JSON.stringify(registerCpuUs)}; INVITE µs CPU ${JSON.stringify(inviteCpuUs)}`);
    return {
      requests: options.requests,
      rounds: options.rounds,
      registerCpuUs,
      inviteCpuUs,
      hostileRegisterCpuRatio: round(registerCpuUs[worstRegister] / registerCpuUs.normal),
      hostileInviteCpuRatio: round(inviteCpuUs[worstInvite] / inviteCpuUs.normal),
      worstRegister,
      worstInvite,
    };
  } finally {
    client?.close();
    await pusher?.stop();
    await apns.close();
  }
}
