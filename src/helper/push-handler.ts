// Turns one PushRequest from Kamailio into one PushResult: picks the app's credentials, sends, and logs
// one line per push (masked token, outcome, code, latency).
import type { AppConfig } from "../config";
import type { PushRequest, PushResult } from "../protocol";
import type { ApnsOutcome, ApnsSender } from "./apns-sender";
import { maskToken, type Logger } from "./logger";

export interface PushHandlerOptions {
  apps: { readonly [appId: string]: AppConfig };
  sender: Pick<ApnsSender, "send">;
  logger: Logger;
  now?: () => number;
}

function notSent(code: "PUSHER_ERR_NO_APP" | "PUSHER_ERR_FCM_NOT_CONFIGURED", reason: string): ApnsOutcome {
  return { outcome: "failed", code, reason, attempts: 0 };
}

/** Returns the function that handles each PushRequest; it never throws. */
export function createPushHandler(options: PushHandlerOptions): (request: PushRequest) => Promise<PushResult> {
  const { apps, sender, logger } = options;
  const now = options.now ?? Date.now;

  async function deliver(request: PushRequest): Promise<ApnsOutcome> {
    const { appId, provider } = request.device;
    if (provider === "firebase") return notSent("PUSHER_ERR_FCM_NOT_CONFIGURED", "Firebase pushes are not supported yet");
    // hasOwnProperty: an app id such as "constructor" must not find Object.prototype's members.
    const app = Object.prototype.hasOwnProperty.call(apps, appId) ? apps[appId] : undefined;
    if (!app || !app.apple) return notSent("PUSHER_ERR_NO_APP", `no apps.${appId}.apple in the configuration`);
    try {
      return await sender.send(request, app.apple);
    } catch (error) {
      // The sender classifies every failure it knows; this is a bug, reported rather than left unanswered.
      logger.error(`push: unexpected error: ${(error as Error).stack ?? String(error)}`);
      return { outcome: "failed", code: "PUSHER_ERR_APNS_CONNECTION", reason: (error as Error).message, attempts: 0 };
    }
  }

  return async function handlePush(request: PushRequest): Promise<PushResult> {
    const startedMs = now();
    const outcome = await deliver(request);
    const result: PushResult = {
      type: "push-result",
      callRef: request.callRef,
      callId: request.callId,
      aor: request.aor,
      instance: request.device.instance,
      outcome: outcome.outcome,
    };
    if (outcome.code) result.code = outcome.code;
    if (outcome.reason !== undefined) result.reason = outcome.reason;
    if (outcome.dropToken) result.dropToken = true;

    const fields = [
      `call-id=${JSON.stringify(request.callId)}`,
      `app=${JSON.stringify(request.device.appId)}`,
      `provider=${request.device.provider}`,
      `token=${maskToken(request.device.token)}`,
      `outcome=${outcome.outcome}`,
    ];
    if (outcome.code) fields.push(`code=${outcome.code}`);
    if (outcome.reason !== undefined) fields.push(`reason=${JSON.stringify(outcome.reason)}`);
    if (outcome.status !== undefined) fields.push(`status=${outcome.status}`);
    if (outcome.dropToken) fields.push("drop-token=yes");
    fields.push(`attempts=${outcome.attempts}`, `latency=${now() - startedMs}ms`);
    const line = `push ${fields.join(" ")}`;
    if (outcome.outcome === "sent") logger.info(line);
    else logger.warn(line);
    return result;
  };
}
