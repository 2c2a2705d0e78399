// The one token mask of the plugin, the helper and the CLI (the plugin's copy runs in Duktape:
// test/plugin/duktape-bundle.test.ts).
import { describe, expect, it } from "vitest";
import { maskToken } from "../src/mask-token";

describe("maskToken", () => {
  it("shows the first 6 and the last 4 characters of a token of 20 or more", () => {
    expect(maskToken("0123456789abcdef0123")).toBe("012345…0123");
    expect(maskToken("7e5700" + "0".repeat(54) + "0001")).toBe("7e5700…0001");
  });

  it("shows nothing of a token under 20 characters, where 6 + 4 would be half of it or more", () => {
    expect(maskToken("0123456789abcdefghi")).toBe("…");
    expect(maskToken("0123456789abc")).toBe("…");
    expect(maskToken("short")).toBe("…");
    expect(maskToken("")).toBe("…");
  });
});
