// The helper's connection to Kamailio: a TCP client of evapi (bind_addr 127.0.0.1:<link.port>), netstring-framed
// JSON both ways (Kamailio's evapi module README, parameter netstring_format). Kamailio may start after the
// helper or restart under it, so the link reconnects forever with a capped backoff. On every new connection the
// two sides prove the link secret to each other (src/link-auth.ts): until Kamailio has, the helper sends nothing
// but its own random nonce and obeys nothing; then it proves the secret itself and says hello.
// evapi drops messages while no client is connected, so a result that cannot be sent now is dropped too:
// after a reconnect its transaction may no longer exist.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { LINK_HANDSHAKE_MS, linkProofText, type LinkRole } from "../link-auth";
import { readLinkSecretFile } from "../link-secret-file";
import {
  PROTOCOL_VERSION,
  parsePluginMessage,
  type HelperMessage,
  type PluginMessage,
  type PushRequest,
  type StatsReport,
} from "../protocol";
import type { Logger } from "./logger";
import { encodeNetstring, NetstringDecoder } from "./netstring";
import { PusherError } from "./provider-errors";

// The framing lives in its own pure module; re-exported here because it is this link's wire format.
export { encodeNetstring, MAX_FRAME_BYTES, NetstringDecoder } from "./netstring";

export const LINK_HOST = "127.0.0.1";
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

export interface KamailioLinkOptions {
  port: number;
  /** The link secret file, read at each connection (a new secret takes effect at the next one). */
  secretFile: string;
  logger: Logger;
  onMessage: (message: PushRequest | StatsReport) => void;
  /** Called after each authenticated connect, once the hello is written. */
  onConnect?: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** HMAC-SHA-256 of the proof text for `role`, as hex (the plugin computes the same in src/hmac-sha256.ts). */
function proofOf(secret: string, role: LinkRole, kamailioNonce: string, helperNonce: string): string {
  return createHmac("sha256", secret)
    .update(linkProofText(role, kamailioNonce, helperNonce))
    .digest("hex");
}

/** Where a connection's handshake stands: waiting for Kamailio's challenge, for its proof, or done. */
type Handshake =
  | { stage: "challenge" }
  | { stage: "proof"; secret: string; kamailioNonce: string; helperNonce: string }
  | { stage: "done" };

export class KamailioLink {
  private socket: net.Socket | null = null;
  /** True once the connection is authenticated both ways. */
  private connected = false;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private connectedAtMs = 0;
  /** Whether the last failure was already logged at warn (repeats go to debug while Kamailio stays down). */
  private downReported = false;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: KamailioLinkOptions) {
    this.minBackoffMs = options.minBackoffMs ?? MIN_BACKOFF_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? MAX_BACKOFF_MS;
    this.backoffMs = this.minBackoffMs;
  }

  /** Starts connecting; keeps reconnecting until close(). */
  start(): void {
    this.closing = false;
    this.connect();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Sends one message; returns false (message dropped) when Kamailio is not connected. */
  send(message: HelperMessage): boolean {
    if (!this.socket || !this.connected) return false;
    this.socket.write(encodeNetstring(JSON.stringify(message)));
    return true;
  }

  /** Stops reconnecting and closes the connection. */
  close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once("close", () => resolve());
      // end() lets the last results flush; destroy() if Kamailio does not close its side soon.
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  private connect(): void {
    const { port, logger } = this.options;
    const decoder = new NetstringDecoder();
    const socket = net.connect({ host: LINK_HOST, port });
    this.socket = socket;
    let handshake: Handshake = { stage: "challenge" };
    let handshakeTimer: NodeJS.Timeout | null = null;

    /** The process on the port did not prove the secret: it gets nothing more (it may be squatting the port). */
    const refuse = (why: string) => {
      logger.error(
        `link: PUSHER_ERR_LINK_AUTH ${LINK_HOST}:${port} ${why}: not our Kamailio (another link secret, an older pusher.cfg, or a process squatting the port); reconnecting`,
      );
      socket.destroy();
    };
    const onConnect = () => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
      handshakeTimer = setTimeout(
        () => refuse(`sent no link challenge and proof within ${LINK_HANDSHAKE_MS / 1000} s`),
        LINK_HANDSHAKE_MS,
      );
      handshakeTimer.unref();
    };
    const write = (message: HelperMessage) => socket.write(encodeNetstring(JSON.stringify(message)));
    /** The handshake's frames; any other message, or one out of turn, refuses the connection. */
    const onHandshake = (message: PluginMessage): void => {
      if (handshake.stage === "challenge" && message.type === "link-challenge") {
        const read = readLinkSecretFile(this.options.secretFile);
        if (!("secret" in read)) {
          logger.error(`link: PUSHER_ERR_LINK_SECRET ${this.options.secretFile} ${read.problem}; reconnecting`);
          socket.destroy();
          return;
        }
        handshake = {
          stage: "proof",
          secret: read.secret,
          kamailioNonce: message.nonce,
          helperNonce: randomBytes(32).toString("hex"),
        };
        write({ type: "link-challenge", nonce: handshake.helperNonce });
        return;
      }
      if (handshake.stage === "proof" && message.type === "link-proof") {
        const expected = Buffer.from(
          proofOf(handshake.secret, "kamailio", handshake.kamailioNonce, handshake.helperNonce),
        );
        if (!timingSafeEqual(expected, Buffer.from(message.proof)))
          return refuse("answered the link challenge with a wrong link-proof");
        if (handshakeTimer) clearTimeout(handshakeTimer);
        write({
          type: "link-proof",
          proof: proofOf(handshake.secret, "helper", handshake.kamailioNonce, handshake.helperNonce),
        });
        handshake = { stage: "done" };
        this.connected = true;
        this.connectedAtMs = Date.now();
        this.downReported = false;
        logger.info(`link: connected to Kamailio evapi at ${LINK_HOST}:${port} (authenticated)`);
        this.send({ type: "hello", version: PROTOCOL_VERSION, pid: process.pid });
        this.options.onConnect?.();
        return;
      }
      refuse(`sent ${message.type} before proving the link secret`);
    };
    const onData = (chunk: Buffer) => {
      let payloads: string[];
      try {
        payloads = decoder.push(chunk);
      } catch (error) {
        // A framing error leaves the stream unsynchronised: only a new connection recovers.
        const code = error instanceof PusherError ? error.code : "PUSHER_ERR_LINK_FRAME";
        logger.error(`link: ${code} ${(error as Error).message}; reconnecting`);
        socket.destroy();
        return;
      }
      for (const payload of payloads) {
        if (socket.destroyed) return;
        const message = parsePluginMessage(payload);
        // Only the size is logged: the frame may hold a device token.
        if (!message)
          logger.warn(
            `link: PUSHER_ERR_BAD_MESSAGE ignored a ${Buffer.byteLength(payload)}-byte frame that is not a plugin message`,
          );
        else if (handshake.stage !== "done") onHandshake(message);
        else if (message.type === "push" || message.type === "stats") this.options.onMessage(message);
      }
    };
    const onError = (error: NodeJS.ErrnoException) => {
      const line = `link: Kamailio evapi at ${LINK_HOST}:${port}: ${error.code ?? error.message}`;
      if (this.downReported) logger.debug(line);
      else logger.warn(line);
      this.downReported = true;
    };
    const onClose = () => {
      if (handshakeTimer) clearTimeout(handshakeTimer);
      const wasConnected = this.connected;
      this.connected = false;
      if (this.socket === socket) this.socket = null;
      if (wasConnected) logger.warn(`link: connection to Kamailio closed`);
      if (!this.closing) this.scheduleReconnect(wasConnected);
    };
    socket.on("connect", onConnect);
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
  }

  private scheduleReconnect(wasConnected: boolean): void {
    // A connection that lived a while resets the backoff; one closed at once (evapi max_clients reached,
    // Kamailio still starting) keeps doubling it, so the helper never hammers the port.
    if (wasConnected && Date.now() - this.connectedAtMs >= this.maxBackoffMs) this.backoffMs = this.minBackoffMs;
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.options.logger.debug(`link: reconnecting in ${delayMs} ms`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closing) this.connect();
    }, delayMs);
    this.reconnectTimer.unref();
  }
}
