// The operator's alarm for credentials a provider refuses (providers.md §7 "CREDS"): logged at error level at
// most once a minute per app and provider (a busy app would otherwise flood the log), every occurrence counted,
// device tokens kept — the fault is ours, not the phone's.
import type { PushProvider } from "../protocol";
import type { Logger } from "./logger";

export const ALARM_INTERVAL_MS = 60_000;

interface AlarmState {
  count: number;
  lastLoggedMs: number;
  /** Occurrences since the last logged line. */
  unlogged: number;
}

export class CredentialsAlarm {
  private readonly alarms = new Map<string, AlarmState>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  raise(appId: string, provider: PushProvider, code: string, reason: string | undefined): void {
    const key = `${appId}\n${provider}`;
    const nowMs = this.now();
    const state = this.alarms.get(key) ?? { count: 0, lastLoggedMs: -Infinity, unlogged: 0 };
    this.alarms.set(key, state);
    state.count++;
    state.unlogged++;
    if (nowMs - state.lastLoggedMs < ALARM_INTERVAL_MS) return;
    const repeats = state.unlogged > 1 ? ` (${state.unlogged} times since the last report)` : "";
    this.logger.error(
      `credentials alarm app=${JSON.stringify(appId)} provider=${provider} code=${code} reason=${JSON.stringify(reason ?? "")}${repeats}: ` +
        `pushes for this app fail until its credentials are fixed; device tokens are kept`,
    );
    state.lastLoggedMs = nowMs;
    state.unlogged = 0;
  }

  /** How many pushes of this app and provider hit a credentials problem so far. */
  count(appId: string, provider: PushProvider): number {
    return this.alarms.get(`${appId}\n${provider}`)?.count ?? 0;
  }
}
