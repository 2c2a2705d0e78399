// Sends pushes through FCM HTTP v1: `POST /v1/projects/<project>/messages:send` with an OAuth bearer minted from
// the app's service account (fcm-oauth.ts). https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
// One HTTP/2 session per (FCM host, service account); a 401 fetches a new access token once, then alarms.
import type { FirebaseCredentials } from "../config";
import type { PushRequest } from "../protocol";
import { buildFcmMessage, fcmDataBytes, MAX_FCM_DATA_BYTES } from "./fcm-payload";
import { OAuthFailure, OAuthTokens, readServiceAccount, type ServiceAccount } from "./fcm-oauth";
import { ProviderSender, type SenderOptions } from "./provider-sender";
import {
  classifyFcmResponse,
  classifyTransportError,
  fcmErrorCode,
  PusherError,
  retryAfterMs,
} from "./provider-errors";
import { fitToSize } from "./push-content";
import { pushDeadlineMs, sendWithRetries, type AttemptResult, type SendOutcome } from "./retry-policy";

const DEFAULT_FCM_PORT = 443;

export function fcmAuthority(host: string): string {
  const [hostname, port] = host.split(":");
  return `https://${hostname}:${port ?? DEFAULT_FCM_PORT}`;
}

export class FcmSender extends ProviderSender {
  readonly oauth: OAuthTokens;

  constructor(options: SenderOptions = {}) {
    super("fcm", options);
    this.oauth = new OAuthTokens(this.sessions, this.now, this.requestTimeoutMs);
  }

  send(request: PushRequest, credentials: FirebaseCredentials): Promise<SendOutcome> {
    let rejectedToken: string | undefined;
    const deadlineMs = pushDeadlineMs(request, this.now());
    return sendWithRetries(
      async (refresh) => {
        const result = await this.attempt(request, credentials, refresh ? rejectedToken : undefined, deadlineMs);
        rejectedToken = result.accessToken;
        return result;
      },
      { deadlineMs, now: this.now, sleep: this.sleep, baseDelayMs: this.retryBaseDelayMs },
    );
  }

  close(): Promise<void> {
    return this.sessions.close();
  }

  private async attempt(
    request: PushRequest,
    credentials: FirebaseCredentials,
    rejectedToken: string | undefined,
    deadlineMs: number,
  ): Promise<AttemptResult & { accessToken?: string }> {
    const nowMs = this.now();
    let account: ServiceAccount;
    let accessToken: string;
    try {
      // Read per attempt: a replaced key file is picked up without a restart (the token cache still spares Google).
      account = readServiceAccount(credentials.serviceAccountFile);
      accessToken = await this.oauth.accessToken(account, rejectedToken);
    } catch (error) {
      if (error instanceof OAuthFailure) {
        const result: AttemptResult = { classification: error.classification, reason: error.message };
        if (error.status !== undefined) result.status = error.status;
        if (error.retryAfterMs !== undefined) result.retryAfterMs = error.retryAfterMs;
        return result;
      }
      return { classification: classifyTransportError(error, "firebase"), reason: (error as Error).message };
    }
    const projectId = request.device.fcmProjectId || account.projectId;
    // The project came from the phone (pn-param): only one the app owns is pushed to (a record stored before the
    // plugin checked it at REGISTER may name any), and only an answer about our own project can prove our
    // credentials bad (provider-errors.ts classifyFcmResponse).
    const ownProject = projectId === account.projectId;
    if (!ownProject && (credentials.projectIds ?? []).indexOf(projectId) < 0) {
      const reason = `the device's Firebase project id ${JSON.stringify(projectId)} is neither the service account's (${account.projectId}) nor in projectIds: not sent`;
      return {
        classification: classifyTransportError(new PusherError("PUSHER_ERR_BAD_DEVICE", reason), "firebase"),
        reason,
      };
    }
    // FCM counts the data map's keys and values against 4096 bytes: trim it to that, never get the push refused.
    const { value: message } = fitToSize(
      request,
      (trimmed) => buildFcmMessage(trimmed, nowMs),
      MAX_FCM_DATA_BYTES,
      fcmDataBytes,
    );
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, deadlineMs - nowMs));
    try {
      const response = await this.sessions.request(
        { key: `fcm\n${credentials.host}\n${account.clientEmail}`, authority: fcmAuthority(credentials.host) },
        {
          ":method": "POST",
          ":path": `/v1/projects/${encodeURIComponent(projectId)}/messages:send`,
          authorization: `Bearer ${accessToken}`,
          "content-type": "application/json; charset=utf-8",
        },
        JSON.stringify(message),
        timeoutMs,
      );
      let json: unknown;
      try {
        json = JSON.parse(response.body);
      } catch {
        json = undefined;
      }
      const result: AttemptResult & { accessToken?: string } = {
        classification: classifyFcmResponse(response.status, json, ownProject),
        status: response.status,
        accessToken,
      };
      if (response.status === 200) {
        const name = (json as { name?: unknown } | undefined)?.name;
        if (typeof name === "string") result.providerId = name;
      } else {
        const { errorCode, status, message: text } = fcmErrorCode(json);
        result.reason = errorCode ?? status ?? text ?? `HTTP ${response.status}`;
      }
      const retryAfter = retryAfterMs(response.headers["retry-after"], this.now());
      if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
      return result;
    } catch (error) {
      return {
        classification: classifyTransportError(error, "firebase"),
        reason: (error as Error).message,
        accessToken,
      };
    }
  }
}
