// Turns one PushRequest from Kamailio into one PushResult: picks the app's credentials for the device's
// provider, sends, raises the credentials alarm, and logs one line per push (masked token, outcome, code, latency).
import type { AppConfig } from "../config";
import type { ErrorCode } from "../errors";
import { maskToken } from "../mask-token";
import type { PushProvider, PushRequest, PushResult } from "../protocol";
import type { ApnsSender } from "./apns-sender";
import { CREDENTIALS_HOLD_MS, CredentialsAlarm } from "./credentials-alarm";
import type { FcmSender } from "./fcm-sender";
import type { Logger } from "./logger";
import type { HelperMetrics } from "./metrics";
import type { SendOutcome } from "./retry-policy";
import type { WebPushSender } from "./webpush-sender";

export interface PushSenders {
  apple: Pick<ApnsSender, "send">;
  firebase: Pick<FcmSender, "send">;
  webpush: Pick<WebPushSender, "send">;
}

export interface PushHandlerOptions {
  apps: { readonly [appId: string]: AppConfig };
  senders: PushSenders;
  logger: Logger;
  alarm?: CredentialsAlarm;
  /** Counts each finished push (pusher_pushes_total…). */
  metrics?: HelperMetrics;
  now?: () => number;
}

const ADD_COMMAND: { [provider in PushProvider]: string } = {
  apple: "add-apple or add-apple-token",
  firebase: "add-firebase",
  webpush: "add-webpush",
};

function notSent(code: "PUSHER_ERR_NO_APP" | "PUSHER_ERR_APP_DISABLED", reason: string): SendOutcome {
  return { outcome: "failed", code, reason, attempts: 0 };
}

/** Sends one push by the app's configuration; never throws. Shared by the helper and `pusher test-push`. */
export async function deliverPush(
  request: PushRequest,
  options: Omit<PushHandlerOptions, "now">,
): Promise<SendOutcome> {
  const { apps, senders, logger } = options;
  const { appId, provider } = request.device;
  // hasOwnProperty: an app id such as "constructor" must not find Object.prototype's members.
  const app = Object.prototype.hasOwnProperty.call(apps, appId) ? apps[appId] : undefined;
  if (app && app.enabled === false) return notSent("PUSHER_ERR_APP_DISABLED", `apps.${appId}.enabled is false`);
  const hold = options.alarm?.held(appId, provider);
  if (hold) {
    const reason = `not sent: ${provider} refused this app's credentials ${Math.round(hold.ageMs / 1000)} s ago (${hold.reason}); pushes wait ${CREDENTIALS_HOLD_MS / 1000} s or a reload`;
    options.alarm?.raise(appId, provider, hold.code, reason, true);
    options.metrics?.countCredentialsAlarm(appId, provider);
    return { outcome: "failed", code: hold.code as ErrorCode, reason, credentials: true, attempts: 0 };
  }
  let outcome: SendOutcome;
  try {
    if (provider === "apple" && app?.apple) outcome = await senders.apple.send(request, app.apple);
    else if (provider === "firebase" && app?.firebase) outcome = await senders.firebase.send(request, app.firebase);
    else if (provider === "webpush" && app?.webpush) outcome = await senders.webpush.send(request, app.webpush);
    else
      return notSent(
        "PUSHER_ERR_NO_APP",
        `no apps.${appId}.${provider} in the configuration (pusher apps ${ADD_COMMAND[provider]})`,
      );
  } catch (error) {
    // The senders classify every failure they know; this is a bug, reported rather than left unanswered.
    logger.error(`push: unexpected error: ${(error as Error).stack ?? String(error)}`);
    return { outcome: "failed", code: "PUSHER_ERR_BAD_MESSAGE", reason: (error as Error).message, attempts: 0 };
  }
  if (outcome.credentials) {
    options.alarm?.raise(appId, provider, outcome.code ?? "", outcome.reason);
    options.metrics?.countCredentialsAlarm(appId, provider);
  }
  return outcome;
}

/** Returns the function that handles each PushRequest; it never throws. */
export function createPushHandler(options: PushHandlerOptions): (request: PushRequest) => Promise<PushResult> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const alarm = options.alarm ?? new CredentialsAlarm(logger, now);

  return async function handlePush(request: PushRequest): Promise<PushResult> {
    const startedMs = now();
    const outcome = await deliverPush(request, { ...options, alarm });
    options.metrics?.countPush(
      request.device.provider,
      request.purpose ?? "call",
      outcome.outcome,
      outcome.code,
      outcome.dropToken === true,
    );
    const result: PushResult = {
      type: "push-result",
      callRef: request.callRef,
      callId: request.callId,
      aor: request.aor,
      instance: request.device.instance,
      outcome: outcome.outcome,
      // The plugin acts on a result only when this is the token it sent for the call.
      token: request.device.token,
    };
    if (outcome.code) result.code = outcome.code;
    if (outcome.reason !== undefined) result.reason = outcome.reason;
    if (outcome.dropToken) {
      result.dropToken = true;
      if (outcome.tokenInvalidSinceMs !== undefined) result.tokenInvalidSinceMs = outcome.tokenInvalidSinceMs;
    }

    const fields = [
      `call-id=${JSON.stringify(request.callId)}`,
      `app=${JSON.stringify(request.device.appId)}`,
      `provider=${request.device.provider}`,
    ];
    if (request.purpose === "call-ended")
      fields.push(`purpose=call-ended`, `end-reason=${request.endReason ?? "cancelled"}`);
    if (request.purpose === "message" || request.purpose === "refresh") fields.push(`purpose=${request.purpose}`);
    fields.push(`token=${maskToken(request.device.token)}`, `outcome=${outcome.outcome}`);
    if (outcome.code) fields.push(`code=${outcome.code}`);
    if (outcome.reason !== undefined) fields.push(`reason=${JSON.stringify(outcome.reason)}`);
    if (outcome.status !== undefined) fields.push(`status=${outcome.status}`);
    if (outcome.dropToken) fields.push("drop-token=yes");
    if (outcome.tokenInvalidSinceMs !== undefined)
      fields.push(`token-invalid-since=${new Date(outcome.tokenInvalidSinceMs).toISOString()}`);
    fields.push(`attempts=${outcome.attempts}`, `latency=${now() - startedMs}ms`);
    const line = `push ${fields.join(" ")}`;
    if (outcome.outcome === "sent") logger.info(line);
    else logger.warn(line);
    return result;
  };
}
