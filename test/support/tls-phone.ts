// A phone on SIP over TLS, where sipp cannot go (Debian's sipp is built without TLS): one TLS connection from the
// phone's own loopback address and port (verified against the test CA), a REGISTER on it, and the requests the
// proxy then sends on that same connection (a call's INVITE, ACK, BYE), answered as a phone does: Via,
// Record-Route, From, To (with a tag), Call-ID and CSeq mirrored (RFC 3261 §8.2.6, §12.1.1).
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { randomBytes } from "node:crypto";
import { TEST_CA_DIR } from "./pusher-process";
import type { Phone } from "./topology";
import { headerOf, splitSipStream } from "./sip-wire";

/** Every `name` header line of `message`, in order, as received. */
function headerLines(message: string, name: string): string[] {
  return message.split("\r\n").filter((line) => new RegExp(`^(?:${name})[ \\t]*:`, "i").test(line));
}

export class TlsPhone {
  private buffer = "";
  private readonly received: string[] = [];
  private readonly waiters: { test: (message: string) => boolean; done: (message: string) => void }[] = [];
  private readonly toTag = randomBytes(6).toString("hex");
  private readonly closed: Promise<void>;

  private constructor(
    readonly phone: Phone,
    private readonly socket: tls.TLSSocket,
  ) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => this.onStream(chunk));
    socket.on("error", () => {});
    this.closed = new Promise((done) => socket.once("close", () => done()));
  }

  /** Connects from phone.address:phone.port to Kamailio's TLS listener at 127.0.0.1:`proxyPort`. */
  static async open(proxyPort: number, phone: Phone): Promise<TlsPhone> {
    // TCP first, from the phone's own address and port; TLS on top of it.
    const tcp = net.connect({ host: "127.0.0.1", port: proxyPort, localAddress: phone.address, localPort: phone.port });
    await new Promise<void>((resolve, reject) => {
      tcp.once("connect", resolve);
      tcp.once("error", reject);
    });
    const socket = tls.connect({ socket: tcp, ca: readFileSync(join(TEST_CA_DIR, "ca.pem")), servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return new TlsPhone(phone, socket);
  }

  /** The phone's Contact on this connection, push params inside the URI (`uriParams`) and after it (`params`). */
  contact(params = "", uriParams = ""): string {
    return `<sip:${this.phone.contactUser}@${this.phone.address}:${this.phone.port};transport=tls${uriParams}>${params}`;
  }

  /** REGISTERs the phone's AOR with `contact`; resolves with the final answer. */
  async register(contact: string, userAgent: string, expires = 600): Promise<string> {
    const { user, domain, address, port } = this.phone;
    const callId = `${randomBytes(8).toString("hex")}@${address}`;
    this.send(
      `REGISTER sip:${domain} SIP/2.0\r\n` +
        `Via: SIP/2.0/TLS ${address}:${port};branch=z9hG4bK${randomBytes(8).toString("hex")};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <sip:${user}@${domain}>;tag=${randomBytes(6).toString("hex")}\r\n` +
        `To: <sip:${user}@${domain}>\r\n` +
        `Call-ID: ${callId}\r\n` +
        `CSeq: 1 REGISTER\r\n` +
        `Contact: ${contact}\r\n` +
        `User-Agent: ${userAgent}\r\n` +
        `Expires: ${expires}\r\n` +
        `Content-Length: 0\r\n\r\n`,
    );
    return this.next((message) => /^SIP\/2\.0 [2-6]\d\d/.test(message) && headerOf(message, "Call-ID|i") === callId);
  }

  /** The next request of `method` the proxy sent on this connection (already received or to come). */
  request(method: string, timeoutMs?: number): Promise<string> {
    return this.next((message) => message.startsWith(`${method} `), timeoutMs);
  }

  /** Answers `request` with `status`; answers to an INVITE carry the phone's Contact (and a small SDP for 200). */
  reply(request: string, status: number, reason: string): void {
    const to = headerOf(request, "To|t");
    const invite = request.startsWith("INVITE ");
    const body =
      invite && status === 200
        ? `v=0\r\no=phone 1 1 IN IP4 ${this.phone.address}\r\ns=-\r\nc=IN IP4 ${this.phone.address}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n`
        : "";
    this.send(
      `SIP/2.0 ${status} ${reason}\r\n` +
        headerLines(request, "Via|v")
          .map((line) => line + "\r\n")
          .join("") +
        headerLines(request, "Record-Route")
          .map((line) => line + "\r\n")
          .join("") +
        `From: ${headerOf(request, "From|f")}\r\n` +
        `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=${this.toTag}`}\r\n` +
        `Call-ID: ${headerOf(request, "Call-ID|i")}\r\n` +
        `CSeq: ${headerOf(request, "CSeq")}\r\n` +
        (invite ? `Contact: ${this.contact()}\r\n` : "") +
        (body ? `Content-Type: application/sdp\r\n` : "") +
        `Content-Length: ${Buffer.byteLength(body, "latin1")}\r\n\r\n${body}`,
    );
  }

  /** Closes the connection as a sleeping iOS app does; resolves once both sides have closed it. */
  async close(): Promise<void> {
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 2000); // a proxy that never closes its side
    await this.closed;
    clearTimeout(timer);
  }

  private send(message: string): void {
    this.socket.write(message, "latin1");
  }

  private next(test: (message: string) => boolean, timeoutMs = 10000): Promise<string> {
    const index = this.received.findIndex(test);
    if (index >= 0) return Promise.resolve(this.received.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no matching SIP message over TLS within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((m) => m.split("\r\n")[0]))}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({ test, done: (message) => (clearTimeout(timer), resolve(message)) });
    });
  }

  private onStream(chunk: string): void {
    const { messages, rest } = splitSipStream(this.buffer + chunk);
    this.buffer = rest;
    for (const message of messages) this.onMessage(message);
  }

  private onMessage(message: string): void {
    const waiter = this.waiters.find((candidate) => candidate.test(message));
    if (!waiter) {
      this.received.push(message);
      return;
    }
    this.waiters.splice(this.waiters.indexOf(waiter), 1);
    waiter.done(message);
  }
}
