// A small SIP client for the fault tests, on one UDP socket (and TCP connections for messages too big for a
// datagram), both on the client's own loopback address (test/support/topology.ts: never Kamailio's 127.0.0.1).
// It sends raw bytes exactly as given (the hostile corpus has NUL, bare CR/LF and non-UTF-8 bytes, which sipp
// cannot send), retransmits over UDP until the first answer (RFC 3261 timer A/E, T1 = 500 ms), ACKs every final
// INVITE answer, and records each answer per request with its time, so a test can count final replies per call
// and bound when they came. It stands in for callers, for phones that only register, and for a hostile client.
import dgram from "node:dgram";
import net from "node:net";
import { createHash, randomBytes } from "node:crypto";
import { nextAddress } from "../../support/topology";
import { headerOf, splitSipStream } from "../../support/sip-wire";

export interface SipAnswer {
  status: number;
  reason: string;
  toTag: string;
  atMs: number;
  raw: string;
}

export interface SentRequest {
  method: string;
  branch: string;
  callId: string;
  sentAtMs: number;
  /** Every answer received, retransmissions of the same final answer included once. */
  answers: SipAnswer[];
  /** Distinct final answers (status + To tag): exactly one is the only correct count. */
  finals(): SipAnswer[];
  /** Resolves with the first final answer, or null when none came within `timeoutMs` of sending. */
  final: Promise<SipAnswer | null>;
  /** Resolves with the first answer of any kind (provisional included), or null. */
  firstAnswer: Promise<SipAnswer | null>;
}

const T1_MS = 500;
/** Where Kamailio listens (the next hop, never a SIP domain). */
const PROXY_ADDRESS = "127.0.0.1";

export function newBranch(): string {
  return "z9hG4bK" + randomBytes(8).toString("hex");
}

export function newTag(): string {
  return randomBytes(6).toString("hex");
}

/** The branch of the top Via, the key answers are matched on (with the CSeq method: a CANCEL shares its INVITE's). */
export function topBranch(message: string): string {
  const via = headerOf(message, "(?:Via|v)");
  const match = /;\s*branch=([^;,\s]+)/i.exec(via);
  return match ? match[1] : "";
}

/** A client transaction: its branch and method (RFC 3261 §17.1.3; a CANCEL's branch is its INVITE's). */
function transactionKey(branch: string, method: string): string {
  return `${branch} ${method}`;
}

function parseAnswer(raw: string): SipAnswer | null {
  const match = /^SIP\/2\.0 (\d{3}) ?([^\r\n]*)/.exec(raw);
  if (!match) return null;
  const to = headerOf(raw, "(?:To|t)");
  const tag = /;\s*tag=([^;>\s]+)/i.exec(to);
  return { status: Number(match[1]), reason: match[2], toTag: tag ? tag[1] : "", atMs: Date.now(), raw };
}

interface Pending {
  request: SentRequest;
  raw: Buffer;
  transport: "udp" | "tcp";
  resolveFinal: (answer: SipAnswer | null) => void;
  resolveFirst: (answer: SipAnswer | null) => void;
  retransmitTimer?: NodeJS.Timeout;
  socket?: net.Socket;
}

export class SipClient {
  private readonly pending = new Map<string, Pending>();
  readonly sent: SentRequest[] = [];
  /** Answers that matched no request we sent (must stay 0). */
  strayAnswers = 0;
  /** Requests the proxy sent to this client over UDP (a phone's INVITEs): recorded, never answered. */
  readonly requestsReceived: string[] = [];

  private constructor(
    private readonly udp: dgram.Socket,
    /** The loopback address it sends from (UDP and TCP) and names in Via and Contact. */
    readonly address: string,
    readonly port: number,
    private readonly serverPort: number,
  ) {
    udp.on("message", (data) => this.onAnswer(data.toString("latin1")));
  }

  /** A client on `address` (default: the next loopback address of the test topology, nextAddress()), any free port. */
  static async open(serverPort: number, options: { address?: string } = {}): Promise<SipClient> {
    const address = options.address ?? nextAddress();
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, address, () => resolve());
    });
    // A thousand held calls get their answers in bursts: a large receive buffer keeps them all.
    udp.setRecvBufferSize(8 * 1024 * 1024);
    return new SipClient(udp, address, udp.address().port, serverPort);
  }

  /** host:port of its UDP socket, as its Via and Contact name it. */
  get hostPort(): string {
    return `${this.address}:${this.port}`;
  }

  /**
   * Sends `raw` (its top Via branch must be unique) and follows its transaction. `timeoutMs`: how long to
   * wait for the final answer before `final` resolves with null.
   */
  send(raw: Buffer | string, options: { transport?: "udp" | "tcp"; timeoutMs?: number } = {}): SentRequest {
    const bytes = typeof raw === "string" ? Buffer.from(raw, "latin1") : raw;
    const text = bytes.toString("latin1");
    const transport = options.transport ?? "udp";
    const method = /^([A-Z]+) /.exec(text)?.[1] ?? "?";
    let resolveFinal!: (answer: SipAnswer | null) => void;
    let resolveFirst!: (answer: SipAnswer | null) => void;
    const final = new Promise<SipAnswer | null>((resolve) => (resolveFinal = resolve));
    const firstAnswer = new Promise<SipAnswer | null>((resolve) => (resolveFirst = resolve));
    const request: SentRequest = {
      method,
      branch: topBranch(text),
      callId: headerOf(text, "(?:Call-ID|i)"),
      sentAtMs: Date.now(),
      answers: [],
      finals() {
        const seen = new Set<string>();
        return this.answers.filter((answer) => {
          const key = `${answer.status}/${answer.toTag}`;
          if (answer.status < 200 || seen.has(key)) return false;
          seen.add(key);
          return true;
        });
      },
      final,
      firstAnswer,
    };
    const entry: Pending = { request, raw: bytes, transport, resolveFinal, resolveFirst };
    this.pending.set(transactionKey(request.branch, method), entry);
    this.sent.push(request);
    const timeout = setTimeout(() => {
      clearTimeout(entry.retransmitTimer);
      resolveFirst(null);
      resolveFinal(null);
    }, options.timeoutMs ?? 32_000);
    void final.then(() => clearTimeout(timeout));
    if (transport === "udp") {
      this.udp.send(bytes, this.serverPort, PROXY_ADDRESS);
      this.scheduleRetransmit(entry, T1_MS);
    } else {
      this.sendTcp(entry);
    }
    return request;
  }

  close(): void {
    for (const entry of this.pending.values()) {
      clearTimeout(entry.retransmitTimer);
      entry.socket?.destroy();
    }
    this.udp.close();
  }

  private scheduleRetransmit(entry: Pending, delayMs: number): void {
    // Timer A (INVITE) stops at the first answer; timer E (others) keeps going until a final one, capped at T2 = 4 s.
    entry.retransmitTimer = setTimeout(() => {
      const answered = entry.request.answers.length > 0;
      if (entry.request.method === "INVITE" ? answered : entry.request.finals().length > 0) return;
      if (Date.now() - entry.request.sentAtMs > 32_000) return;
      this.udp.send(entry.raw, this.serverPort, PROXY_ADDRESS);
      this.scheduleRetransmit(entry, Math.min(delayMs * 2, 4000));
    }, delayMs);
    entry.retransmitTimer.unref();
  }

  private sendTcp(entry: Pending): void {
    const socket = net.connect({ host: PROXY_ADDRESS, port: this.serverPort, localAddress: this.address });
    entry.socket = socket;
    let buffer = "";
    socket.on("connect", () => socket.write(entry.raw));
    socket.on("data", (chunk) => {
      const { messages, rest } = splitSipStream(buffer + chunk.toString("latin1"));
      buffer = rest;
      for (const message of messages) this.onAnswer(message, socket);
    });
    socket.on("error", () => {});
  }

  private onAnswer(raw: string, tcp?: net.Socket): void {
    const answer = parseAnswer(raw);
    if (!answer) {
      if (!tcp && /^[A-Z]+ \S+ SIP\/2\.0\r\n/.test(raw)) this.requestsReceived.push(raw);
      return;
    }
    const entry = this.pending.get(transactionKey(topBranch(raw), headerOf(raw, "CSeq").split(/\s+/)[1] ?? ""));
    if (!entry) {
      this.strayAnswers++;
      return;
    }
    const { request } = entry;
    const repeat = request.answers.some(
      (seen) => seen.status === answer.status && seen.toTag === answer.toTag && answer.status >= 200,
    );
    if (!repeat) request.answers.push(answer);
    entry.resolveFirst(answer);
    if (answer.status < 200) return;
    clearTimeout(entry.retransmitTimer);
    if (request.method === "INVITE") this.ack(entry, raw, tcp);
    entry.resolveFinal(request.finals()[0]);
    if (tcp && request.method !== "INVITE") tcp.end();
  }

  /** ACK for a final INVITE answer (RFC 3261 §17.1.1.3): same branch, the answer's To, CSeq number. */
  private ack(entry: Pending, answer: string, tcp?: net.Socket): void {
    const request = entry.raw.toString("latin1");
    const requestUri = /^INVITE (\S+)/.exec(request)?.[1] ?? "";
    const via = /^(?:Via|v)\s*:[^\r\n]*/im.exec(request)?.[0] ?? "";
    const from = /^(?:From|f)\s*:[^\r\n]*/im.exec(request)?.[0] ?? "";
    const to = /^(?:To|t)\s*:[^\r\n]*/im.exec(answer)?.[0] ?? "";
    const cseq = /^CSeq\s*:\s*(\d+)/im.exec(request)?.[1] ?? "1";
    const ack =
      `ACK ${requestUri} SIP/2.0\r\n${via}\r\nMax-Forwards: 70\r\n${from}\r\n${to}\r\n` +
      `Call-ID: ${entry.request.callId}\r\nCSeq: ${cseq} ACK\r\nContent-Length: 0\r\n\r\n`;
    if (tcp) tcp.write(Buffer.from(ack, "latin1"));
    else this.udp.send(Buffer.from(ack, "latin1"), this.serverPort, PROXY_ADDRESS);
  }
}

/** The caller's number the INVITEs come from; its Contact user is another name, as a real UA's is. */
export const CALLER_NUMBER = "15551234567";

/**
 * A plain INVITE to `callee`@`domain` from 15551234567@`domain`, sent from the client's address (Via, Contact).
 */
export function invite(
  client: SipClient,
  callee: string,
  domain: string,
  options: { callId?: string; fromDisplay?: string; extraHeaders?: string[] } = {},
): string {
  const callId = options.callId ?? `${newTag()}@${client.address}`;
  const display = options.fromDisplay ?? '"Caller"';
  return (
    `INVITE sip:${callee}@${domain} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${client.hostPort};branch=${newBranch()};rport\r\n` +
    `Max-Forwards: 70\r\n` +
    `From: ${display} <sip:${CALLER_NUMBER}@${domain}>;tag=${newTag()}\r\n` +
    `To: <sip:${callee}@${domain}>\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: 1 INVITE\r\n` +
    `Contact: <sip:${contactUserOf(CALLER_NUMBER)}@${client.hostPort}>\r\n` +
    (options.extraHeaders ?? []).map((line) => line + "\r\n").join("") +
    `Content-Length: 0\r\n\r\n`
  );
}

/** The Contact user a phone registering `user` names by default: never the AOR's user (register-many.xml's rule). */
export function contactUserOf(user: string): string {
  return `c-${user}`;
}

/**
 * A REGISTER of `user`@`domain` whose Contact, sip:<contactUser>@<client's address:port> (default contact user
 * `c-<user>`), carries `contactParams`.
 */
export function register(
  client: SipClient,
  user: string,
  domain: string,
  contactParams: string,
  options: { contactUser?: string; userAgent?: string; expires?: number; extraHeaders?: string[] } = {},
): string {
  return (
    `REGISTER sip:${domain} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${client.hostPort};branch=${newBranch()};rport\r\n` +
    `Max-Forwards: 70\r\n` +
    `From: <sip:${user}@${domain}>;tag=${newTag()}\r\n` +
    `To: <sip:${user}@${domain}>\r\n` +
    `Call-ID: ${newTag()}@${client.address}\r\n` +
    `CSeq: 1 REGISTER\r\n` +
    `Contact: ${contactUri(client, options.contactUser ?? contactUserOf(user))}${contactParams}\r\n` +
    `Expires: ${options.expires ?? 600}\r\n` +
    `User-Agent: ${options.userAgent ?? "MyMobileApp iOS 1.0"}\r\n` +
    (options.extraHeaders ?? []).map((line) => line + "\r\n").join("") +
    `Content-Length: 0\r\n\r\n`
  );
}

/** The Contact URI (in angle brackets) register() writes for `contactUser` on `client`. */
export function contactUri(client: SipClient, contactUser: string): string {
  return `<sip:${contactUser}@${client.hostPort}>`;
}

/** The CANCEL of `invite` (RFC 3261 §9.1): its request URI, top Via (so its branch), From, To, Call-ID, CSeq number. */
export function cancel(invite: string): string {
  const line = (name: string) => new RegExp(`^(?:${name})\\s*:[^\\r\\n]*`, "im").exec(invite)?.[0] ?? "";
  const requestUri = /^INVITE (\S+)/.exec(invite)?.[1] ?? "";
  const cseq = /^CSeq\s*:\s*(\d+)/im.exec(invite)?.[1] ?? "1";
  return (
    `CANCEL ${requestUri} SIP/2.0\r\n${line("Via|v")}\r\nMax-Forwards: 70\r\n${line("From|f")}\r\n${line("To|t")}\r\n` +
    `${line("Call-ID|i")}\r\nCSeq: ${cseq} CANCEL\r\nContent-Length: 0\r\n\r\n`
  );
}

/** Sends `count` requests made by `make(i)` at `perSecond`, spread evenly; resolves once all are sent. */
export async function sendAtRate(
  client: SipClient,
  count: number,
  perSecond: number,
  make: (index: number) => string,
): Promise<SentRequest[]> {
  const requests: SentRequest[] = [];
  const startedMs = Date.now();
  for (let i = 0; i < count; i++) {
    const dueMs = startedMs + (i * 1000) / perSecond;
    const waitMs = dueMs - Date.now();
    if (waitMs > 1) await new Promise((done) => setTimeout(done, waitMs));
    requests.push(client.send(make(i)));
  }
  return requests;
}

/** Sends a REGISTER; a 401 challenge is answered with `user`'s digest credentials. Resolves with the final status. */
export async function registerWithDigest(
  client: SipClient,
  raw: string,
  user: string,
  password: string,
): Promise<number | undefined> {
  const challenge = await client.send(raw).final;
  if (challenge?.status !== 401) return challenge?.status;
  return (await client.send(withDigest(raw, challenge, user, password)).final)?.status;
}

/**
 * `raw` again with digest credentials for `challenge` (a 401's WWW-Authenticate, RFC 2617; qop=auth when
 * offered), a new branch and CSeq 2.
 */
export function withDigest(raw: string, challenge: SipAnswer, user: string, password: string): string {
  const header = /^WWW-Authenticate\s*:\s*Digest\s+(.*)$/im.exec(challenge.raw)?.[1] ?? "";
  const field = (name: string) => new RegExp(`${name}="?([^",]*)"?`, "i").exec(header)?.[1] ?? "";
  const md5 = (text: string) => createHash("md5").update(text).digest("hex");
  const realm = field("realm");
  const nonce = field("nonce");
  const uri = /^REGISTER (\S+)/.exec(raw)?.[1] ?? "";
  const ha1 = md5(`${user}:${realm}:${password}`);
  const ha2 = md5(`REGISTER:${uri}`);
  const qop = /qop="?[^"]*auth/i.test(header);
  const cnonce = newTag();
  const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
  const authorization =
    `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5` +
    (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : "");
  return raw
    .replace(/;branch=[^;\r\n]+/, `;branch=${newBranch()}`)
    .replace(/^CSeq: 1 REGISTER/m, "CSeq: 2 REGISTER")
    .replace(/\r\nContent-Length: 0\r\n\r\n$/, `\r\n${authorization}\r\nContent-Length: 0\r\n\r\n`);
}
