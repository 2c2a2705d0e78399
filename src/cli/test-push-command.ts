// `pusher test-push <app-id> <token> [--type apple|firebase|webpush]`: one push through the helper's own senders
// (same credentials, payload and error policy as a real call, Kazoo's `pusher_maintenance push` test values),
// then the provider's answer. Exit status 0 only when the provider accepted the push.
import { randomUUID } from "node:crypto";
import type { PushProvider, PushRequest, WebPushKeys } from "../protocol";
import { ApnsSender, silentLogger } from "../helper/apns-sender";
import { FcmSender } from "../helper/fcm-sender";
import { deliverPush } from "../helper/push-handler";
import { WebPushSender } from "../helper/webpush-sender";
import { CliError, loadConfig, usageError } from "./config-file";

const PROVIDERS: PushProvider[] = ["apple", "firebase", "webpush"];
/** How long the test "call" rings: the window for retries. */
const TEST_RING_MS = 15_000;

/**
 * A browser's `PushSubscription.toJSON()` (the endpoint is the token, the keys encrypt the payload), or a bare
 * endpoint URL as RFC 8599's pn-prid gives it (a push without payload, as a call to such a device sends).
 */
function parseSubscription(text: string): { endpoint: string; keys?: WebPushKeys } {
  if (text.startsWith("https://")) return { endpoint: text };
  let json: { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
  try {
    json = JSON.parse(text);
  } catch {
    throw usageError(
      `a webpush token must be the subscription JSON {"endpoint":…,"keys":{"p256dh":…,"auth":…}} or an https endpoint URL`,
    );
  }
  if (
    typeof json.endpoint !== "string" ||
    typeof json.keys?.p256dh !== "string" ||
    typeof json.keys?.auth !== "string"
  ) {
    throw usageError(`the webpush subscription needs "endpoint", "keys.p256dh" and "keys.auth"`);
  }
  return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}

export async function runTestPush(
  configPath: string,
  args: string[],
  options: { [name: string]: string },
): Promise<void> {
  for (const name of Object.keys(options))
    if (name !== "--type") throw usageError(`${name} is not an option of "test-push"`);
  if (args.length !== 2) throw usageError(`expected "test-push <app-id> <token> [--type apple|firebase|webpush]"`);
  const [appId, token] = args;
  const { path, config } = loadConfig(configPath);
  const app = Object.prototype.hasOwnProperty.call(config.apps, appId) ? config.apps[appId] : undefined;
  if (!app) throw new CliError("PUSHER_ERR_NO_APP", `no app ${JSON.stringify(appId)} in ${path}`);
  const configured = PROVIDERS.filter((provider) => app[provider] !== undefined);
  const type = (options["--type"] ?? (configured.length === 1 ? configured[0] : undefined)) as PushProvider | undefined;
  if (!type)
    throw usageError(
      `app ${appId} has ${configured.length ? configured.join(" and ") : "no provider"}: give --type apple|firebase|webpush`,
    );
  if (!PROVIDERS.includes(type))
    throw usageError(`--type must be apple, firebase or webpush, got ${JSON.stringify(type)}`);

  const request: PushRequest = {
    type: "push",
    callRef: "0:0",
    callId: `pusher-test-${randomUUID()}`,
    aor: "test-push",
    device: { instance: "test-push", appId, provider: type, token },
    caller: { number: "15555555555", name: "this is a push test" },
    proxy: "",
    ringsUntilMs: Date.now() + TEST_RING_MS,
  };
  if (type === "webpush") {
    const subscription = parseSubscription(token);
    request.device.token = subscription.endpoint;
    if (subscription.keys) request.device.webpush = subscription.keys;
  }
  const senders = { apple: new ApnsSender(), firebase: new FcmSender(), webpush: new WebPushSender() };
  try {
    const outcome = await deliverPush(request, { apps: config.apps, senders, logger: silentLogger });
    const details = [
      outcome.status !== undefined ? `status ${outcome.status}` : "",
      outcome.providerId ? `id ${outcome.providerId}` : "",
      `${outcome.attempts} attempt(s)`,
    ]
      .filter(Boolean)
      .join(", ");
    if (outcome.outcome === "sent") {
      console.log(`${type} accepted the push for app ${appId} (${details})`);
      return;
    }
    const dead = outcome.dropToken ? "; the token is dead (a call would remove the device record)" : "";
    throw new CliError(
      outcome.code ?? "PUSHER_ERR_APNS_REJECTED",
      // The handler prints the code before the message (`pusher: <code>: …`).
      `${type} did not accept the push: ${outcome.reason ?? "no reason given"} (${details})${dead}`,
    );
  } finally {
    await Promise.all([senders.apple.close(), senders.firebase.close(), senders.webpush.close()]);
  }
}
