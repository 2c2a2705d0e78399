import { describe, expect, it } from "vitest";
import { appleBundleOf, isTopicOfApp } from "../src/apple-bundle";

describe("appleBundleOf", () => {
  it.each([
    ["com.acme.phone", "com.acme.phone"],
    ["com.acme.phone.dev", "com.acme.phone"],
    ["com.acme.phone.prod", "com.acme.phone"],
    ["com.acme.phone.voip", "com.acme.phone"],
    ["com.acme.phone.voip.dev", "com.acme.phone"],
    // A bundle id that itself ends in .voip is spelt with the suffix twice (Kazoo's rule).
    ["com.acme.voip.voip", "com.acme.voip"],
  ])("%s → %s", (appId, bundle) => {
    expect(appleBundleOf(appId)).toBe(bundle);
  });
});

describe("isTopicOfApp", () => {
  it("accepts the app's bundle and its VoIP topic, nothing else", () => {
    expect(isTopicOfApp("com.acme.phone", "com.acme.phone.dev")).toBe(true);
    expect(isTopicOfApp("com.acme.phone.voip", "com.acme.phone")).toBe(true);
    expect(isTopicOfApp("com.acme.phone2", "com.acme.phone")).toBe(false);
    expect(isTopicOfApp("com.other.app", "com.acme.phone")).toBe(false);
    expect(isTopicOfApp("com.acme.phone.dev", "com.acme.phone")).toBe(false);
    // An RFC 8599 binding without app-id is stored under its topic: a bundle id of its own ending in .dev.
    expect(isTopicOfApp("com.acme.phone.dev", "com.acme.phone.dev")).toBe(true);
  });
});
