import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../src/config";
import { deviceLine, devicesFromItems, parseHtableItems } from "../../src/cli/devices-command";

const DAY_MS = 24 * 3600 * 1000;

function record(aor: string, instance: string, registeredAtMs: number) {
  return {
    aor,
    instance,
    appId: "com.x",
    provider: "apple",
    token: "0123456789abcdef0123",
    userAgent: "UA",
    proxy: "sip:127.0.0.1",
    registeredAtMs,
  };
}

describe("pusher devices", () => {
  it("reads the items of kamcmd's htable.dump answer", () => {
    const value = JSON.stringify({ a: record("alice@h", "a", 1) });
    const output = `{\n\tentry: 1\n\tsize: 1\n\tslot: {\n\t\t{\n\t\t\tname: alice@h\n\t\t\tvalue: ${value}\n\t\t\ttype: str\n\t\t}\n\t}\n}\n`;
    expect(parseHtableItems(output)).toEqual([{ name: "alice@h", value }]);
  });

  it("lists every device of every AOR, leaving out records past devices.retentionDays", () => {
    const now = 100 * DAY_MS;
    const items = [
      {
        name: "bob@h",
        value: JSON.stringify({
          b2: record("bob@h", "b2", now - DAY_MS),
          b1: record("bob@h", "b1", now - 31 * DAY_MS),
        }),
      },
      { name: "alice@h", value: JSON.stringify({ a: record("alice@h", "a", now - 29 * DAY_MS) }) },
    ];
    expect(devicesFromItems(items, defaultConfig(), now).map((device) => [device.aor, device.instance])).toEqual([
      ["alice@h", "a"],
      ["bob@h", "b2"],
    ]);
  });

  // Instance ids and User-Agents come from phones: a CR, LF or ESC of theirs must not reach the operator's terminal.
  it("prints one line per device, with control characters escaped", () => {
    const device = {
      ...record("alice@h", "urn:x\r\nforged\ttab", 0),
      provider: "apple" as const,
      userAgent: "UA \x1b[31mred\x9b2J",
    };
    const line = deviceLine(device);
    expect(line).toBe(
      "alice@h\turn:x\\x0d\\x0aforged\\x09tab\tcom.x\tapple\t0123456789abcdef0123\tUA \\x1b[31mred\\x9b2J\t1970-01-01T00:00:00.000Z",
    );
    expect(line).not.toMatch(/[\r\n\x1b\x9b]/);
  });
});
