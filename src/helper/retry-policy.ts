// The one retry loop every provider's sender runs a push through (the policy in docs/errors.md): retry with
// exponential backoff + jitter or the server's Retry-After, at once for requests the server provably did not
// process, at most once for ambiguous timeouts, one credential refresh for a stale JWT/OAuth token — and never
// once the push has lost its use (a ringing call stopped ringing).
import type { ErrorCode } from "../errors";
import type { PushOutcome, PushRequest } from "../protocol";
import type { Classification } from "./provider-errors";

/** First backoff delay; doubles per retry (Google: 1, 2, 4… s; a ringing call has seconds, so we start lower). */
export const DEFAULT_RETRY_BASE_DELAY_MS = 250;
/** Attempts per push, the first included. */
export const MAX_ATTEMPTS = 6;
/** A retry needs at least this long before the deadline to be worth sending. */
const MIN_RETRY_WINDOW_MS = 500;

/** One attempt's result, as a sender reports it. */
export interface AttemptResult {
  classification: Classification;
  /** The provider's reason (APNs `Unregistered`, FCM `UNREGISTERED`, HTTP status text) or the error's message. */
  reason?: string;
  status?: number;
  /** The server's Retry-After, in ms. */
  retryAfterMs?: number;
  /** The provider's id for an accepted push (apns-id, FCM message name, Web Push Location). */
  providerId?: string;
  /** APNs 410's `timestamp`: epoch ms since when the token is invalid. */
  tokenInvalidSinceMs?: number;
}

/** The result of a push after its retries: what the PushResult and the log line say. */
export interface SendOutcome {
  outcome: PushOutcome;
  code?: ErrorCode;
  reason?: string;
  dropToken?: boolean;
  /** A credentials problem: the handler raises the app's alarm. */
  credentials?: boolean;
  /** Requests sent: 0 when none was (e.g. the call had already stopped ringing). */
  attempts: number;
  status?: number;
  providerId?: string;
  tokenInvalidSinceMs?: number;
}

export interface RetryOptions {
  /** Epoch ms after which no attempt may start (the call's ringsUntilMs). */
  deadlineMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  baseDelayMs?: number;
  maxAttempts?: number;
  /** Jitter source in [0, 1) (tests fix it). */
  random?: () => number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The delay before retry number `retryIndex` (0-based): base·2^i, with "full jitter" on the upper half. */
export function backoffDelayMs(retryIndex: number, baseDelayMs: number, random: () => number): number {
  const ceiling = baseDelayMs * 2 ** retryIndex;
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * Runs `attempt` until it succeeds, fails for good, or the deadline leaves no room. `attempt(refresh)`: refresh
 * is true when the previous attempt asked for new credentials and a new connection.
 */
export async function sendWithRetries(
  attempt: (refresh: boolean) => Promise<AttemptResult>,
  options: RetryOptions,
): Promise<SendOutcome> {
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
  const maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
  const random = options.random ?? Math.random;
  if (options.deadlineMs - options.now() <= 0) {
    return {
      outcome: "failed",
      code: "PUSHER_ERR_CALL_ENDED",
      reason: "the call stopped ringing before the push",
      attempts: 0,
    };
  }
  let attempts = 0;
  let refreshed = false;
  let ambiguousRetried = false;
  let backoffIndex = 0;
  let refresh = false;
  for (;;) {
    const result = await attempt(refresh);
    attempts++;
    refresh = false;
    const { classification } = result;
    let delayMs: number | null = null;
    if (classification.outcome === "failed" && attempts < maxAttempts) {
      if (classification.refresh && !refreshed) {
        refreshed = true;
        refresh = true;
        delayMs = 0;
      } else if (classification.retry === "now") {
        delayMs = 0;
      } else if (classification.retry === "backoff") {
        delayMs = result.retryAfterMs ?? backoffDelayMs(backoffIndex++, baseDelayMs, random);
      } else if (classification.retry === "once" && !ambiguousRetried) {
        ambiguousRetried = true;
        delayMs = backoffDelayMs(0, baseDelayMs, random);
      }
    }
    // A Retry-After beyond the ring window means: not for this call.
    if (delayMs !== null && options.now() + delayMs + MIN_RETRY_WINDOW_MS > options.deadlineMs) delayMs = null;
    if (delayMs === null) return toOutcome(result, attempts);
    if (delayMs > 0) await options.sleep(delayMs);
  }
}

function toOutcome(result: AttemptResult, attempts: number): SendOutcome {
  const { classification } = result;
  const outcome: SendOutcome = { outcome: classification.outcome, attempts };
  if (classification.code) outcome.code = classification.code;
  if (result.reason !== undefined) outcome.reason = result.reason;
  if (classification.dropToken) outcome.dropToken = true;
  if (classification.credentials) outcome.credentials = true;
  if (result.status !== undefined) outcome.status = result.status;
  if (result.providerId !== undefined) outcome.providerId = result.providerId;
  if (classification.dropToken && result.tokenInvalidSinceMs !== undefined)
    outcome.tokenInvalidSinceMs = result.tokenInvalidSinceMs;
  return outcome;
}

/** A call-ended push ("Missed call") keeps its use a little after the ring window: it may retry this long. */
export const CALL_ENDED_WINDOW_MS = 30_000;

/** The epoch ms after which no attempt of this push may start. */
export function pushDeadlineMs(request: PushRequest, receivedAtMs: number): number {
  if (request.purpose === "call-ended") return Math.max(request.ringsUntilMs, receivedAtMs + CALL_ENDED_WINDOW_MS);
  return request.ringsUntilMs;
}
