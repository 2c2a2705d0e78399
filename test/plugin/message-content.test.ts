// What the plugin decides about a MESSAGE from its text alone (src/plugin/message-content.ts): whether it may be
// stored, what its push may show, and the headers of the copy delivered later.
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../src/config";
import {
  bodyPreviewText,
  deliveredHeaders,
  isTextPlain,
  MAX_UDP_MESSAGE_BYTES,
  previewOf,
  sipDate,
  storeRefusal,
  withoutTag,
} from "../../src/plugin/message-content";

const limits = defaultConfig().messages;

function hex(text: string): string {
  return Buffer.from(text, "utf8").toString("hex");
}

describe("storeRefusal", () => {
  it("stores a MESSAGE within every limit", () => {
    expect(storeRefusal("udp", MAX_UDP_MESSAGE_BYTES, 200, limits.maxPerAor - 1, 60, limits)).toBeNull();
    expect(storeRefusal("tcp", 20000, limits.maxBodyBytes, 0, 60, limits)).toBeNull();
  });

  it("answers 513 to one over UDP above RFC 3428's 1300 bytes, and to a body above messages.maxBodyBytes over TCP", () => {
    expect(storeRefusal("udp", MAX_UDP_MESSAGE_BYTES + 1, 10, 0, 60, limits)).toMatchObject({
      code: 513,
      reason: "Message Too Large",
    });
    expect(storeRefusal("tcp", 30000, limits.maxBodyBytes + 1, 0, 60, limits)).toMatchObject({ code: 513 });
    expect(storeRefusal("tls", 30000, limits.maxBodyBytes + 1, 0, 60, limits)?.why).toContain("messages.maxBodyBytes");
  });

  it("answers 513 to a From, To or Content-Type the delivered copy cannot carry, 480 when messages.maxPerAor wait already", () => {
    expect(storeRefusal("tcp", 2000, 10, 0, 1001, limits)).toMatchObject({ code: 513 });
    expect(storeRefusal("udp", 500, 10, limits.maxPerAor, 60, limits)).toMatchObject({
      code: 480,
      reason: "Temporarily Unavailable",
    });
  });
});

describe("previewOf", () => {
  it("is the first 100 characters of a text/plain body, whatever its parameters", () => {
    expect(previewOf("text/plain", "Hello")).toBe("Hello");
    expect(previewOf("Text/Plain; charset=UTF-8", "x".repeat(150))).toBe("x".repeat(100));
    expect(isTextPlain("text/plainx")).toBe(false);
  });

  it("is none for any other type", () => {
    expect(previewOf("application/im-iscomposing+xml", "<isComposing/>")).toBeNull();
    expect(previewOf("", "Hello")).toBeNull();
  });

  it("counts characters, never cutting a surrogate pair of decoded text in two", () => {
    const preview = previewOf("text/plain", "😀".repeat(120)) as string;
    expect(Array.from(preview)).toHaveLength(100);
    expect(preview).toBe("😀".repeat(100));
  });

  it("reads a body that is not UTF-8 with U+FFFD for its bad bytes, decoding no more than 100 characters need", () => {
    expect(bodyPreviewText("4361" + "e9")).toBe("Ca\ufffd");
    // 400 bytes: enough for 100 characters of up to 4 bytes each.
    expect(bodyPreviewText(hex("é".repeat(500)))).toBe("é".repeat(200));
  });
});

describe("the delivered copy", () => {
  it("has the From and To without their tag (tm gives the new request its own), other params kept", () => {
    expect(withoutTag('"Bob" <sip:15551234567@example.com>;tag=abc123')).toBe('"Bob" <sip:15551234567@example.com>');
    expect(withoutTag("<sip:bob@example.com>;x=1;TAG=z;y")).toBe("<sip:bob@example.com>;x=1;y");
    expect(withoutTag("sip:bob@example.com;tag=1")).toBe("sip:bob@example.com");
    expect(withoutTag("<sip:alice@example.com>")).toBe("<sip:alice@example.com>");
  });

  it("says when the message reached the proxy, in RFC 3261's SIP-date, after its Content-Type", () => {
    expect(sipDate(Date.UTC(2026, 0, 5, 7, 8, 9))).toBe("Mon, 05 Jan 2026 07:08:09 GMT");
    expect(deliveredHeaders("text/plain", Date.UTC(2026, 0, 5, 7, 8, 9))).toBe(
      "Content-Type: text/plain\r\nDate: Mon, 05 Jan 2026 07:08:09 GMT\r\n",
    );
    expect(deliveredHeaders("", 0)).toBe("Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
  });
});
