import { describe, expect, it } from "vitest";
import { UserAgentRule } from "../../src/config";
import { matchUserAgent, pushParamNamesOf, ruleAcceptsApp } from "../../src/plugin/user-agent-rules";

const rules: UserAgentRule[] = [
  { name: "myapp-ios", regex: "^MyApp/[0-9.]+ iOS" },
  { name: "myapp-any", regex: "^MyApp/" },
  { name: "linphone", regex: "Linphone" },
];

describe("matchUserAgent", () => {
  it.each([
    ["MyApp/2.1 iOS 17.2", "myapp-ios"],
    ["MyApp/2.1 Android 14", "myapp-any"],
    ["LinphoneiOS/5.2 (iPhone) LinphoneSDK/5.3", "linphone"],
    ["Zoiper rv2.10", null],
    ["", null],
    ["myapp/2.1 iOS", null],
  ])("matches %j to rule %j (the first rule that matches wins)", (userAgent, name) => {
    expect(matchUserAgent(rules, userAgent)?.name ?? null).toBe(name);
  });

  it("returns the rule object itself", () => {
    expect(matchUserAgent(rules, "MyApp/1 iOS")).toBe(rules[0]);
  });

  it("matches nothing when there are no rules", () => {
    expect(matchUserAgent([], "MyApp/1 iOS")).toBeNull();
  });

  it("skips a rule whose regex does not compile and keeps looking", () => {
    const withBadRule: UserAgentRule[] = [{ name: "broken", regex: "(" }, ...rules];
    expect(matchUserAgent(withBadRule, "MyApp/1 Android")?.name).toBe("myapp-any");
  });

  it("tests the regex unanchored and case-sensitively, as written", () => {
    expect(matchUserAgent([{ name: "sdk", regex: "SDK/5" }], "Linphone/1 LinphoneSDK/5.3")?.name).toBe("sdk");
    expect(matchUserAgent([{ name: "sdk", regex: "SDK/5" }], "linphonesdk/5.3")).toBeNull();
  });

  it("matches every User-Agent with an empty-matching regex such as .*", () => {
    expect(matchUserAgent([{ name: "all", regex: ".*" }], "")?.name).toBe("all");
  });

  it("gives the same answer when called again (no regex state carried between calls)", () => {
    const once = matchUserAgent(rules, "MyApp/2 iOS");
    const twice = matchUserAgent(rules, "MyApp/2 iOS");
    expect(twice).toBe(once);
  });
});

describe("pushParamNamesOf and ruleAcceptsApp", () => {
  it("gives Kazoo's default param names without a rule or without properties", () => {
    expect(pushParamNamesOf(null)).toEqual({ appId: "app-id", type: "pn-type", token: "pn-tok" });
    expect(pushParamNamesOf({ name: "r", regex: "x" })).toEqual({ appId: "app-id", type: "pn-type", token: "pn-tok" });
  });

  it("takes a rule's properties, each unset name keeping its default", () => {
    expect(pushParamNamesOf({ name: "r", regex: "x", properties: { token: "x-token" } })).toEqual({
      appId: "app-id",
      type: "pn-type",
      token: "x-token",
    });
  });

  it("accepts every app without appIds, and only the listed ones with them", () => {
    expect(ruleAcceptsApp({ name: "r", regex: "x" }, "any.app")).toBe(true);
    expect(ruleAcceptsApp({ name: "r", regex: "x", appIds: ["a.b"] }, "a.b")).toBe(true);
    expect(ruleAcceptsApp({ name: "r", regex: "x", appIds: ["a.b"] }, "c.d")).toBe(false);
  });
});
