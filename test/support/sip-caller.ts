// A caller the test drives step by step, where a sipp scenario cannot wait for "the phone rings now": sends an
// INVITE to an AOR through the proxy over UDP or TCP from its own loopback address, records every answer, and
// sends the CANCEL (on the INVITE's connection over TCP) when the test says. ACKs final non-2xx answers (RFC 3261
// §17.1.1.3) and retransmits over UDP (timer A until the first answer, timer E for the CANCEL).
import dgram from "node:dgram";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { freePort } from "./free-port";
import { headerOf as header, splitSipStream } from "./sip-wire";
import { nextAddress } from "./topology";

export interface Answer {
  status: number;
  /** The CSeq method it answers: INVITE or CANCEL. */
  method: string;
  raw: string;
  atMs: number;
}

const T1_MS = 500;

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

export class SipCaller {
  readonly answers: Answer[] = [];
  private readonly waiters: { test: (answer: Answer) => boolean; done: (answer: Answer) => void }[] = [];
  private invite = "";
  private readonly branch = "z9hG4bK" + hex(8);
  private readonly fromTag = hex(6);
  private retransmit?: NodeJS.Timeout;
  private tcpBuffer = "";

  private constructor(
    readonly transport: "udp" | "tcp",
    readonly address: string,
    readonly port: number,
    private readonly proxyPort: number,
    private readonly proxyHost: string,
    private readonly udp?: dgram.Socket,
    private readonly tcp?: net.Socket,
  ) {
    udp?.on("message", (data) => this.onMessage(data.toString("latin1")));
    tcp?.on("data", (chunk) => this.onStream(chunk.toString("latin1")));
    tcp?.on("error", () => {});
  }

  /** A caller on a new loopback address of its own, towards the proxy at proxyHost:proxyPort (a cluster node: its 127.0.1.x). */
  static async open(proxyPort: number, transport: "udp" | "tcp" = "udp", proxyHost = "127.0.0.1"): Promise<SipCaller> {
    const address = nextAddress();
    const port = await freePort(address);
    if (transport === "udp") {
      const socket = dgram.createSocket("udp4");
      await new Promise<void>((resolve) => socket.bind(port, address, resolve));
      return new SipCaller("udp", address, port, proxyPort, proxyHost, socket);
    }
    const socket = net.connect({ host: proxyHost, port: proxyPort, localAddress: address, localPort: port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new SipCaller("tcp", address, port, proxyPort, proxyHost, undefined, socket);
  }

  /** Calls `user`@`domain` (from 15551234567@`domain`) with `callId`. */
  call(user: string, domain: string, callId: string): void {
    const proto = this.transport.toUpperCase();
    this.invite =
      `INVITE sip:${user}@${domain} SIP/2.0\r\n` +
      `Via: SIP/2.0/${proto} ${this.address}:${this.port};branch=${this.branch};rport\r\n` +
      `Max-Forwards: 70\r\n` +
      `From: "Caller Name" <sip:15551234567@${domain}>;tag=${this.fromTag}\r\n` +
      `To: <sip:${user}@${domain}>\r\n` +
      `Call-ID: ${callId}\r\n` +
      `CSeq: 1 INVITE\r\n` +
      `Contact: <sip:15551234567@${this.address}:${this.port};transport=${this.transport}>\r\n` +
      `Content-Length: 0\r\n\r\n`;
    this.send(this.invite);
    this.retransmitUntil(this.invite, () => this.answers.some((answer) => answer.method === "INVITE"), T1_MS);
  }

  /** CANCEL of the INVITE (same branch, Call-ID, From and CSeq number; RFC 3261 §9.1). */
  cancel(): void {
    const requestUri = /^INVITE (\S+)/.exec(this.invite)?.[1] ?? "";
    const cancel =
      `CANCEL ${requestUri} SIP/2.0\r\n` +
      `${/^Via:[^\r\n]*/m.exec(this.invite)?.[0]}\r\n` +
      `Max-Forwards: 70\r\n` +
      `${/^From:[^\r\n]*/m.exec(this.invite)?.[0]}\r\n` +
      `${/^To:[^\r\n]*/m.exec(this.invite)?.[0]}\r\n` +
      `Call-ID: ${header(this.invite, "Call-ID")}\r\n` +
      `CSeq: 1 CANCEL\r\n` +
      `Content-Length: 0\r\n\r\n`;
    this.send(cancel);
    this.retransmitUntil(
      cancel,
      () => this.answers.some((answer) => answer.method === "CANCEL" && answer.status >= 200),
      T1_MS,
    );
  }

  /** Resolves with the first answer (already received or to come) that `test` accepts. */
  waitFor(test: (answer: Answer) => boolean, timeoutMs = 15000): Promise<Answer> {
    const found = this.answers.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no matching answer within ${timeoutMs} ms; got ${this.answers.map((a) => `${a.status} ${a.method}`).join(", ") || "none"}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({ test, done: (answer) => (clearTimeout(timer), resolve(answer)) });
    });
  }

  /** The INVITE's answer of `status`. */
  inviteAnswer(status: number, timeoutMs?: number): Promise<Answer> {
    return this.waitFor((answer) => answer.method === "INVITE" && answer.status === status, timeoutMs);
  }

  /** The INVITE's final answers (each status once): exactly one is the only correct count. */
  inviteFinals(): number[] {
    return [
      ...new Set(
        this.answers
          .filter((answer) => answer.method === "INVITE" && answer.status >= 200)
          .map((answer) => answer.status),
      ),
    ];
  }

  close(): void {
    clearTimeout(this.retransmit);
    this.udp?.close();
    this.tcp?.destroy();
  }

  private send(message: string): void {
    const bytes = Buffer.from(message, "latin1");
    if (this.udp) this.udp.send(bytes, this.proxyPort, this.proxyHost);
    else this.tcp!.write(bytes);
  }

  private retransmitUntil(message: string, done: () => boolean, delayMs: number): void {
    if (!this.udp) return;
    clearTimeout(this.retransmit);
    this.retransmit = setTimeout(() => {
      if (done()) return;
      this.send(message);
      this.retransmitUntil(message, done, Math.min(delayMs * 2, 4000));
    }, delayMs);
    this.retransmit.unref();
  }

  private onStream(chunk: string): void {
    const { messages, rest } = splitSipStream(this.tcpBuffer + chunk);
    this.tcpBuffer = rest;
    for (const message of messages) this.onMessage(message);
  }

  private onMessage(raw: string): void {
    const match = /^SIP\/2\.0 (\d{3})/.exec(raw);
    if (!match) return;
    const answer: Answer = {
      status: Number(match[1]),
      method: header(raw, "CSeq").split(/\s+/)[1] ?? "",
      raw,
      atMs: Date.now(),
    };
    this.answers.push(answer);
    if (answer.method === "INVITE" && answer.status >= 300) this.ack(raw);
    for (const waiter of [...this.waiters]) {
      if (!waiter.test(answer)) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.done(answer);
    }
  }

  /** ACK of a final non-2xx answer: the INVITE's branch, its To tag (RFC 3261 §17.1.1.3). */
  private ack(answer: string): void {
    const requestUri = /^INVITE (\S+)/.exec(this.invite)?.[1] ?? "";
    this.send(
      `ACK ${requestUri} SIP/2.0\r\n` +
        `${/^Via:[^\r\n]*/m.exec(this.invite)?.[0]}\r\n` +
        `Max-Forwards: 70\r\n` +
        `${/^From:[^\r\n]*/m.exec(this.invite)?.[0]}\r\n` +
        `To: ${header(answer, "To|t")}\r\n` +
        `Call-ID: ${header(this.invite, "Call-ID")}\r\n` +
        `CSeq: 1 ACK\r\n` +
        `Content-Length: 0\r\n\r\n`,
    );
  }
}
