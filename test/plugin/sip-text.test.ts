import { describe, expect, it } from "vitest";
import { indexOutsideQuotes, isUtf8Hex, utf8HexToText } from "../../src/plugin/sip-text";

const hexOf = (bytes: Buffer | string) => Buffer.from(bytes).toString("hex");

describe("utf8HexToText", () => {
  it.each(["plain", "Jürgen Müller", "📞 Call", "line\u2028sep", "日本語", ""])(
    "decodes valid UTF-8 %j exactly",
    (text) => {
      expect(utf8HexToText(hexOf(text))).toBe(text);
    },
  );

  it.each([
    ["Latin-1 é", [0x43, 0x61, 0x66, 0xe9], "Caf\ufffd"],
    ["bytes that never start a character", [0x61, 0x62, 0xff, 0xfe, 0x63, 0x64], "ab\ufffd\ufffdcd"],
    ["an encoded UTF-16 surrogate", [0xed, 0xa0, 0x80], "\ufffd\ufffd\ufffd"],
    ["an overlong '/'", [0xc0, 0xaf], "\ufffd\ufffd"],
    ["a sequence cut short at the end", [0x61, 0xe2, 0x82], "a\ufffd\ufffd"],
  ])("turns %s into U+FFFD and keeps the rest", (_name, bytes, expected) => {
    expect(utf8HexToText(hexOf(Buffer.from(bytes as number[])))).toBe(expected);
    expect(isUtf8Hex(hexOf(Buffer.from(bytes as number[])))).toBe(false);
  });

  it("calls valid UTF-8 valid, a real U+FFFD included", () => {
    expect(isUtf8Hex(hexOf("📞 \ufffd Jürgen"))).toBe(true);
  });
});

describe("indexOutsideQuotes", () => {
  it("skips a < inside a quoted display name, and escaped quotes inside it", () => {
    expect(indexOutsideQuotes('"<Al \\"x\\">" <sip:a@b>', "<")).toBe(13);
    expect(indexOutsideQuotes('"unterminated <sip:a@b>', "<")).toBe(-1);
  });
});
