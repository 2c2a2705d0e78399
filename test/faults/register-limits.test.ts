// What one subscriber's REGISTERs may cost Kamailio (npm test; the 100 000-REGISTER flood is
// register-limits.long.test.ts in npm run test:faults): shared memory ends where it started whatever User-Agents
// and instance ids a client invents, an AOR keeps devices.maxPerAor devices (the one registered longest ago goes,
// logged, its token leaving the token index), and cfg's unchanged-REGISTER shortcut never answers a REGISTER
// with the key of an earlier one.
import { expect, it } from "vitest";
import { DOMAIN } from "../support/topology";
import {
  describeFlood,
  devicesPerAor,
  expectFloodBounded,
  rfc8599Params,
  runFlood,
  useFloodFixture,
} from "./support/register-flood";
import { SipClient, register } from "./support/sip-client";

const MAX_PER_AOR = 10;
// Each AOR keeps about 50 of the flood's usrloc bindings until they are removed (ul.rm): every 200 OK lists them.
const AORS = 50;
const fixture = useFloodFixture();

it("ends 5 000 REGISTERs with new User-Agents and instance ids within 64 KiB of the shared memory it started with", async () => {
  const figures = await runFlood(fixture(), AORS, 5000, MAX_PER_AOR);
  console.log(describeFlood("register flood (short)", figures, 5000));
  expectFloodBounded(figures, AORS, MAX_PER_AOR);
}, 120000);

it("keeps devices.maxPerAor devices per AOR: a new one replaces the one registered longest ago, logged, its token unindexed", async () => {
  const { pusher } = fixture();
  const client = await SipClient.open(pusher.sipPort);
  try {
    const tokens = Array.from({ length: MAX_PER_AOR + 1 }, (_, i) => `${(0xe000 + i).toString(16)}${"0".repeat(60)}`);
    for (const [i, token] of tokens.entries()) {
      // Each its own Contact user: a phone of its own, registered one after the other.
      const raw = register(
        client,
        "eleven",
        DOMAIN,
        rfc8599Params(token, `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`),
        { contactUser: `c-eleven-${i}` },
      );
      expect((await client.send(raw).final)?.status).toBe(200);
    }
    const record = pusher.rpc("htable.get", "pusher_devices", `eleven@${DOMAIN}`);
    expect(devicesPerAor(pusher.rpc, [`eleven@${DOMAIN}`]).get(`eleven@${DOMAIN}`)).toBe(MAX_PER_AOR);
    expect(record).not.toContain(tokens[0]);
    for (const token of tokens.slice(1)) expect(record).toContain(token);
    // The token index: the flood's 500 entries (the test before) and these.
    const indexed = (token: string) => {
      try {
        return /value: /.test(pusher.rpc("htable.get", "pusher_tokens", `apple:${token}`));
      } catch {
        return false; // no such item
      }
    };
    expect(indexed(tokens[0])).toBe(false);
    for (const token of tokens.slice(1)) expect(indexed(token)).toBe(true);
    await pusher.waitFor(
      /pusher: device removed aor=eleven@example\.com instance=urn:uuid:00000000-0000-0000-0000-000000000000 app=com\.app\.mymobileapp: the AOR has devices\.maxPerAor \(10\) devices/,
    );
  } finally {
    client.close();
  }
}, 30000);

// $var keeps its value from the SIP worker's previous message, and pv_printf keeps it when the binding text it
// builds (Contact and User-Agent included) overflows pv_buffer_size (8192 bytes): the shortcut then hashed the
// previous REGISTER's text, found its mark, and answered without the plugin. Every worker's previous message here
// is the same REGISTER (sent again and again), and the one that overflows changes the device's token.
it("runs the plugin for a REGISTER whose binding text overflows pv_printf, never the previous REGISTER's key", async () => {
  const { pusher } = fixture();
  const client = await SipClient.open(pusher.sipPort);
  try {
    const instance = "0000aaaa-0000-0000-0000-000000000001";
    const before = `b0${"0".repeat(62)}`;
    const after = `af${"0".repeat(62)}`;
    const unchanged = () =>
      Number(/value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_stats", "registers_unchanged"))?.[1] ?? 0);
    const first = register(client, "overflow", DOMAIN, rfc8599Params(before, instance));
    expect((await client.send(first).final)?.status).toBe(200);
    // The same REGISTER again, at once from many: every SIP worker answers one through the shortcut.
    const unchangedBefore = unchanged();
    const again = await Promise.all(
      Array.from(
        { length: 40 },
        () => client.send(register(client, "overflow", DOMAIN, rfc8599Params(before, instance))).final,
      ),
    );
    expect(again.map((answer) => answer?.status)).toEqual(Array(40).fill(200));
    expect(unchanged()).toBe(unchangedBefore + 40);
    // Contact (7 600 bytes) and User-Agent (1 000) are within the cfg's limits; the binding text is not within 8192.
    const overflowing = register(
      client,
      "overflow",
      DOMAIN,
      `${rfc8599Params(after, instance)};x-pad=${"p".repeat(7400)}`,
      { userAgent: `MyMobileApp iOS 1.0 ${"u".repeat(980)}` },
    );
    expect(/^Contact: .*$/m.exec(overflowing)![0].length).toBeLessThan(8192);
    expect((await client.send(overflowing).final)?.status).toBe(200);
    expect(unchanged()).toBe(unchangedBefore + 40);
    const record = pusher.rpc("htable.get", "pusher_devices", `overflow@${DOMAIN}`);
    expect(record).toContain(after);
    expect(record).not.toContain(before);
  } finally {
    client.close();
  }
}, 30000);
