import { describe, expect, it } from "vitest";
import { encodeNetstring, MAX_FRAME_BYTES, NetstringDecoder } from "../../src/helper/kamailio-link";
import { PusherError } from "../../src/helper/provider-errors";

const bytes = (text: string) => Buffer.from(text, "utf8");

function frameError(run: () => unknown): PusherError {
  try {
    run();
  } catch (error) {
    if (error instanceof PusherError) return error;
    throw error;
  }
  throw new Error("expected a PusherError");
}

describe("encodeNetstring", () => {
  it("frames a payload as <length>:<payload>,", () => {
    expect(encodeNetstring('{"a":1}').toString("utf8")).toBe('7:{"a":1},');
  });

  it("counts bytes, not characters, for multibyte UTF-8", () => {
    // "é" is 2 bytes, "📞" is 4 bytes (and 2 UTF-16 code units): 1 + 2 + 4 = 7 bytes.
    expect(encodeNetstring("aé📞").toString("utf8")).toBe("7:aé📞,");
  });

  it("frames the empty payload", () => {
    expect(encodeNetstring("").toString("utf8")).toBe("0:,");
  });
});

describe("NetstringDecoder", () => {
  it("decodes one whole frame", () => {
    expect(new NetstringDecoder().push(bytes("5:hello,"))).toEqual(["hello"]);
  });

  it("decodes several frames in one chunk", () => {
    expect(new NetstringDecoder().push(bytes("1:a,2:bc,0:,3:def,"))).toEqual(["a", "bc", "", "def"]);
  });

  it("keeps a partial frame until the rest arrives, split anywhere", () => {
    const wire = bytes('12:{"id":"é1"},3:xyz,');
    for (let split = 1; split < wire.length; split++) {
      const decoder = new NetstringDecoder();
      const first = decoder.push(wire.subarray(0, split));
      const second = decoder.push(wire.subarray(split));
      expect([...first, ...second], `split at ${split}`).toEqual(['{"id":"é1"}', "xyz"]);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it("decodes a frame fed one byte at a time", () => {
    const decoder = new NetstringDecoder();
    const payloads: string[] = [];
    for (const byte of bytes("7:aé📞,")) payloads.push(...decoder.push(Buffer.from([byte])));
    expect(payloads).toEqual(["aé📞"]);
  });

  it("uses the byte length for multibyte UTF-8, not the character count", () => {
    // 4 characters but 9 bytes (é = 2, € = 3): a decoder counting characters would stop short of the comma.
    expect(new NetstringDecoder().push(bytes("9:ééé€,1:x,"))).toEqual(["ééé€", "x"]);
  });

  it("skips whitespace between frames, as evapi does", () => {
    expect(new NetstringDecoder().push(bytes("  1:a,\r\n\t2:bc,\n"))).toEqual(["a", "bc"]);
  });

  it("round-trips what the encoder writes", () => {
    const messages = ['{"type":"push","caller":{"name":"Zoë 📞"}}', "", "plain"];
    const wire = Buffer.concat(messages.map(encodeNetstring));
    expect(new NetstringDecoder().push(wire)).toEqual(messages);
  });

  it("refuses a frame that does not end with a comma", () => {
    expect(frameError(() => new NetstringDecoder().push(bytes("3:abcd,"))).code).toBe("PUSHER_ERR_LINK_FRAME");
  });

  it("refuses a non-digit in the length", () => {
    expect(frameError(() => new NetstringDecoder().push(bytes("1x:a,"))).code).toBe("PUSHER_ERR_LINK_FRAME");
    expect(frameError(() => new NetstringDecoder().push(bytes('{"type":"push"}'))).code).toBe("PUSHER_ERR_LINK_FRAME");
  });

  it("refuses a missing length", () => {
    expect(frameError(() => new NetstringDecoder().push(bytes(":a,"))).code).toBe("PUSHER_ERR_LINK_FRAME");
  });

  it("refuses a frame over 1 MiB as soon as its length is known, before buffering it", () => {
    const decoder = new NetstringDecoder();
    expect(frameError(() => decoder.push(bytes(`${MAX_FRAME_BYTES + 1}:`))).code).toBe("PUSHER_ERR_LINK_FRAME");
  });

  it("refuses an endless length prefix without waiting for a colon", () => {
    expect(frameError(() => new NetstringDecoder().push(bytes("123456789"))).code).toBe("PUSHER_ERR_LINK_FRAME");
  });

  it("accepts a frame of exactly 1 MiB", () => {
    const payload = "x".repeat(MAX_FRAME_BYTES);
    expect(new NetstringDecoder().push(encodeNetstring(payload))).toEqual([payload]);
  });
});
