// Netstring framing as Kamailio's evapi speaks it (netstring_format=1): `<byte-length>:<payload>,`.
// The length counts BYTES of the UTF-8 payload, not characters (evapi writes it with "%d:%.*s,").
// evapi also tolerates whitespace between frames, so the decoder skips it too.
// Pure: no sockets here, so the framing can be tested byte by byte.
import { PusherError } from "./provider-errors";

/** Frames above this are refused: plugin messages are a few hundred bytes, and evapi's own buffer is 32 KiB. */
export const MAX_FRAME_BYTES = 1024 * 1024;

const COLON = 0x3a;
const COMMA = 0x2c;
const DIGIT_ZERO = 0x30;
const DIGIT_NINE = 0x39;
// Enough digits for MAX_FRAME_BYTES; a longer length prefix is refused before its colon arrives.
const MAX_LENGTH_DIGITS = String(MAX_FRAME_BYTES).length;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** Frames one message. */
export function encodeNetstring(payload: string): Buffer {
  const body = Buffer.from(payload, "utf8");
  return Buffer.concat([Buffer.from(`${body.length}:`, "ascii"), body, Buffer.from(",", "ascii")]);
}

/**
 * Turns a byte stream into payloads. Feed it every chunk; it keeps partial frames until they complete.
 * Throws PusherError PUSHER_ERR_LINK_FRAME on malformed or oversized input: the stream cannot be resynchronised
 * after that, so the caller drops the connection.
 */
export class NetstringDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const payloads: string[] = [];
    let offset = 0;
    for (;;) {
      while (offset < this.pending.length && isWhitespace(this.pending[offset])) offset++;
      if (offset >= this.pending.length) break;
      const frame = this.readFrame(offset);
      if (!frame) break;
      payloads.push(frame.payload);
      offset = frame.next;
    }
    this.pending = this.pending.subarray(offset);
    return payloads;
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /** Reads the frame starting at `start`, or returns null when more bytes are needed. */
  private readFrame(start: number): { payload: string; next: number } | null {
    const bytes = this.pending;
    let length = 0;
    let position = start;
    for (; position < bytes.length && bytes[position] !== COLON; position++) {
      const byte = bytes[position];
      if (byte < DIGIT_ZERO || byte > DIGIT_NINE)
        throw new PusherError("PUSHER_ERR_LINK_FRAME", `netstring length has a non-digit byte 0x${byte.toString(16)}`);
      if (position - start >= MAX_LENGTH_DIGITS)
        throw new PusherError("PUSHER_ERR_LINK_FRAME", "netstring length prefix is too long");
      length = length * 10 + (byte - DIGIT_ZERO);
    }
    if (position >= bytes.length) return null;
    if (position === start) throw new PusherError("PUSHER_ERR_LINK_FRAME", "netstring has no length before ':'");
    if (length > MAX_FRAME_BYTES)
      throw new PusherError("PUSHER_ERR_LINK_FRAME", `netstring frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
    const payloadStart = position + 1;
    const payloadEnd = payloadStart + length;
    if (bytes.length <= payloadEnd) return null;
    if (bytes[payloadEnd] !== COMMA)
      throw new PusherError("PUSHER_ERR_LINK_FRAME", "netstring frame does not end with ','");
    return { payload: bytes.toString("utf8", payloadStart, payloadEnd), next: payloadEnd + 1 };
  }
}
