import { describe, expect, it } from "vitest";
import { CALL_STRATEGIES, ConfigError, defaultConfig, validateConfig } from "../src/config";

function problemOf(input: unknown): string {
  try {
    validateConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("userAgents rules", () => {
  it("keeps appIds, properties (lower-cased param names), strategy and timers of a rule", () => {
    const config = validateConfig({
      userAgents: [
        {
          name: "myapp",
          regex: "^MyApp",
          appIds: ["com.example.app"],
          properties: { appId: "X-App", type: "x-kind", token: "x-token" },
          strategy: "push-first",
          timers: { inviteFirstMs: 1500, pushWaitMs: 30000 },
        },
      ],
    });
    expect(config.userAgents[0]).toEqual({
      name: "myapp",
      regex: "^MyApp",
      appIds: ["com.example.app"],
      properties: { appId: "x-app", type: "x-kind", token: "x-token" },
      strategy: "push-first",
      timers: { inviteFirstMs: 1500, pushWaitMs: 30000 },
    });
  });

  it("leaves the optional keys out when a rule does not set them", () => {
    expect(validateConfig({ userAgents: [{ name: "r", regex: "x" }] }).userAgents[0]).toEqual({
      name: "r",
      regex: "x",
    });
  });

  it.each([
    [{ name: "r", regex: "x", appIds: [] }, "userAgents[0].appIds: must be a non-empty list of app ids"],
    [{ name: "r", regex: "x", appIds: ["a", ""] }, "userAgents[0].appIds[1]: must be a non-empty string"],
    [{ name: "r", regex: "x", properties: { tokenId: "pn-tok" } }, "userAgents[0].properties.tokenId: unknown key"],
    [
      { name: "r", regex: "x", properties: { token: "pn tok" } },
      'userAgents[0].properties.token: must be a Contact parameter name, got "pn tok"',
    ],
    [
      { name: "r", regex: "x", strategy: "fast" },
      "userAgents[0].strategy: must be one of " + CALL_STRATEGIES.join(", "),
    ],
    [
      { name: "r", regex: "x", timers: { pushWaitMs: 10 } },
      "userAgents[0].timers.pushWaitMs: must be an integer from 1000 to 600000",
    ],
    [{ name: "r", regex: "x", timers: { ringMs: 10 } }, "userAgents[0].timers.ringMs: unknown key"],
    [{ name: "r", regex: "x", retry: true }, "userAgents[0].retry: unknown key"],
  ])("refuses %j naming the key", (rule, message) => {
    expect(problemOf({ userAgents: [rule] })).toBe(message);
  });
});

describe("devices", () => {
  it("keeps a record 30 days after its last REGISTER, and 10 devices per AOR, by default", () => {
    expect(defaultConfig().devices).toEqual({ retentionDays: 30, maxPerAor: 10 });
  });

  it("takes devices.maxPerAor from 1 to 1000", () => {
    expect(validateConfig({ devices: { maxPerAor: 3 } }).devices).toEqual({ retentionDays: 30, maxPerAor: 3 });
    expect(problemOf({ devices: { maxPerAor: 0 } })).toBe("devices.maxPerAor: must be an integer from 1 to 1000");
    expect(problemOf({ devices: { maxPerAor: 2.5 } })).toBe("devices.maxPerAor: must be an integer from 1 to 1000");
  });

  it("takes devices.retentionDays from 1 to 3650", () => {
    expect(validateConfig({ devices: { retentionDays: 7 } }).devices.retentionDays).toBe(7);
    expect(problemOf({ devices: { retentionDays: 0 } })).toBe(
      "devices.retentionDays: must be an integer from 1 to 3650",
    );
    expect(problemOf({ devices: { keep: 1 } })).toBe("devices.keep: unknown key");
  });
});
