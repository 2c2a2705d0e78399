// The operator's alarm for credentials a provider refuses (docs/errors.md, the policy): logged at error level at
// most once a minute per app and provider (a busy app would otherwise flood the log), every occurrence counted,
// device tokens kept — the fault is ours, not the phone's.
// After APNs or FCM refused an app's credentials (already after one renewed JWT / OAuth token), its pushes are
// held back for CREDENTIALS_HOLD_MS: they fail at once instead of each signing a new JWT, opening a new connection
// or asking Google's OAuth endpoint again (Apple answers that with TooManyProviderTokenUpdates), and the caller
// hears 480 without waiting. A config reload lifts the holds. A hold stops every push of the app, so only answers
// that prove the credentials bad raise it (provider-errors.ts): never one that a value a phone chose (an FCM project
// id, an APNs topic) can cause. Web Push is never held: a 403 there can be one subscription's (made with another
// VAPID key), not the app's.
import type { PushProvider } from "../protocol";
import type { Logger } from "./logger";

export const ALARM_INTERVAL_MS = 60_000;
export const CREDENTIALS_HOLD_MS = 30_000;
const HELD_PROVIDERS: PushProvider[] = ["apple", "firebase"];

interface AlarmState {
  count: number;
  lastLoggedMs: number;
  /** Occurrences since the last logged line. */
  unlogged: number;
  /** The provider's last refusal (held-back pushes do not move it): the hold runs from there. */
  refusedAtMs: number;
  code: string;
  reason: string;
}

/** Why a push is held back: the provider's last refusal of the app's credentials. */
export interface CredentialsHold {
  code: string;
  reason: string;
  /** How long ago the provider refused them. */
  ageMs: number;
}

export class CredentialsAlarm {
  private readonly alarms = new Map<string, AlarmState>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** One push failed on the app's credentials; `heldBack`: it was not sent (held()), the provider said nothing new. */
  raise(appId: string, provider: PushProvider, code: string, reason: string | undefined, heldBack = false): void {
    const key = `${appId}\n${provider}`;
    const nowMs = this.now();
    const state = this.alarms.get(key) ?? {
      count: 0,
      lastLoggedMs: -Infinity,
      unlogged: 0,
      refusedAtMs: -Infinity,
      code: "",
      reason: "",
    };
    this.alarms.set(key, state);
    state.count++;
    state.unlogged++;
    if (!heldBack) {
      state.refusedAtMs = nowMs;
      state.code = code;
      state.reason = reason ?? "";
    }
    if (nowMs - state.lastLoggedMs < ALARM_INTERVAL_MS) return;
    const repeats = state.unlogged > 1 ? ` (${state.unlogged} times since the last report)` : "";
    this.logger.error(
      `credentials alarm app=${JSON.stringify(appId)} provider=${provider} code=${code} reason=${JSON.stringify(reason ?? "")}${repeats}: ` +
        `pushes for this app fail until its credentials are fixed; device tokens are kept`,
    );
    state.lastLoggedMs = nowMs;
    state.unlogged = 0;
  }

  /** The hold on this app's pushes to `provider`, or null when they may be sent. */
  held(appId: string, provider: PushProvider): CredentialsHold | null {
    if (HELD_PROVIDERS.indexOf(provider) < 0) return null;
    const state = this.alarms.get(`${appId}\n${provider}`);
    const ageMs = state ? this.now() - state.refusedAtMs : Infinity;
    if (!state || ageMs >= CREDENTIALS_HOLD_MS) return null;
    return { code: state.code, reason: state.reason, ageMs };
  }

  /** A config reload: the credentials may be fixed, every app's pushes are sent again. */
  liftHolds(): void {
    for (const state of this.alarms.values()) state.refusedAtMs = -Infinity;
  }

  /** How many pushes of this app and provider hit a credentials problem so far. */
  count(appId: string, provider: PushProvider): number {
    return this.alarms.get(`${appId}\n${provider}`)?.count ?? 0;
  }
}
