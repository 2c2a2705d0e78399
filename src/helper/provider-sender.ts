// What every provider's sender (APNs, FCM, Web Push) is built from: its options, its clock and its own HTTP/2
// sessions, named for the logs.
import type { Logger } from "./logger";
import { ProviderSessions } from "./provider-sessions";
import { sleep } from "./retry-policy";

/** Kazoo waited 10 s for APNs (gun:await in apns4erl); the call's ring window caps it further. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export interface SenderOptions {
  /** Per-request timeout; never beyond the push's deadline. */
  requestTimeoutMs?: number;
  logger?: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
  /** Waits between retries (tests record the delays instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
  retryBaseDelayMs?: number;
  pingIntervalMs?: number;
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

export abstract class ProviderSender {
  readonly sessions: ProviderSessions;
  protected readonly requestTimeoutMs: number;
  protected readonly now: () => number;
  protected readonly sleep: (ms: number) => Promise<void>;
  protected readonly retryBaseDelayMs?: number;
  protected readonly logger: Logger;

  protected constructor(name: string, options: SenderOptions) {
    this.logger = options.logger ?? silentLogger;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? sleep;
    this.retryBaseDelayMs = options.retryBaseDelayMs;
    this.sessions = new ProviderSessions({ name, logger: this.logger, pingIntervalMs: options.pingIntervalMs });
  }
}
