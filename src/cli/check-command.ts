// `pusher check`: validates pusher.json, a cluster node's database and DMQ peers (cluster-check.ts), the Kamailio in PATH (5.6 or later: src/cli/kamailio-version.ts) and every
// app's credentials, offline then online, with the helper's own modules: the APNs certificate (parse, key match, expiry; warns when < 30 days are left), the .p8 key (signs
// a provider JWT), the FCM service account (parse, then an OAuth token fetched from its token_uri), the VAPID
// key, and an HTTP/2 + TLS connection to each provider host (with the client certificate for certificate
// auth: the server's SETTINGS frame only comes once it accepted the certificate). One line per app; exit 1
// when anything failed. Sends no push (that is `pusher test-push`).
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import type { AppConfig } from "../config";
import { apnsAuthority, silentLogger } from "../helper/apns-sender";
import { readApnsSigningKey } from "../helper/apns-token";
import { fcmAuthority } from "../helper/fcm-sender";
import { OAuthTokens, readServiceAccount } from "../helper/fcm-oauth";
import { signJwt } from "../helper/jwt";
import { ProviderSessions } from "../helper/provider-sessions";
import { readVapidKey, vapidPublicKey } from "../helper/webpush-sender";
import { checkApplePem } from "./apps-command";
import { CliError, loadConfig } from "./config-file";
import { checkCluster } from "./cluster-check";
import { runtimePaths } from "./kamailio-runtime";
import { installedKamailioVersion, requireSupportedKamailio } from "./kamailio-version";

const WARN_DAYS = 30;
const DAY_MS = 86_400_000;
const CONNECT_TIMEOUT_MS = 10_000;

interface Finding {
  level: "ok" | "warn" | "fail";
  text: string;
}

/** Resolves when the server's HTTP/2 SETTINGS arrive (TLS done, client certificate accepted). */
function probeHost(authority: string, clientPem?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority, clientPem ? { cert: clientPem, key: clientPem } : {});
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    );
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      session.destroy();
      if (error) reject(error);
      else resolve();
    };
    session.once("remoteSettings", () => finish());
    session.once("error", (error) => finish(error));
    session.once("close", () => finish(new Error("the server closed the connection (client certificate refused?)")));
  });
}

async function online(findings: Finding[], what: string, probe: () => Promise<unknown>): Promise<void> {
  try {
    await probe();
    findings.push({ level: "ok", text: `${what} ok` });
  } catch (error) {
    findings.push({ level: "fail", text: `${what} failed: ${(error as Error).message}` });
  }
}

function offline<T>(findings: Finding[], check: () => T): T | undefined {
  try {
    return check();
  } catch (error) {
    findings.push({ level: "fail", text: (error as Error).message });
    return undefined;
  }
}

/**
 * The sandbox host only serves devices registered as development builds (RFC 8599 `apns.dev`): one that cannot
 * be reached is a warning, not a failure of the app.
 */
async function probeSandbox(findings: Finding[], what: string, probe: () => Promise<unknown>): Promise<void> {
  try {
    await probe();
    findings.push({ level: "ok", text: `${what} ok` });
  } catch (error) {
    findings.push({
      level: "warn",
      text: `${what} failed: ${(error as Error).message} (sandbox tokens, pn-provider=apns.dev, cannot be pushed)`,
    });
  }
}

async function checkApple(apple: NonNullable<AppConfig["apple"]>, findings: Finding[]): Promise<void> {
  const authority = apnsAuthority(apple.host);
  const sandbox = apple.sandboxHost !== apple.host ? apnsAuthority(apple.sandboxHost) : null;
  if (apple.certificateFile !== undefined) {
    const file = apple.certificateFile;
    const pem = offline(findings, () => readFileSync(file));
    if (!pem) return;
    const certificate = offline(findings, () => checkApplePem(pem.toString("utf8"), file));
    if (!certificate) return;
    const daysLeft = Math.floor((Date.parse(certificate.validTo) - Date.now()) / DAY_MS);
    const expiry = `apple certificate expires ${new Date(certificate.validTo).toISOString().slice(0, 10)} (${daysLeft} days)`;
    findings.push(
      daysLeft < WARN_DAYS ? { level: "warn", text: `${expiry}: renew it soon` } : { level: "ok", text: expiry },
    );
    await online(findings, `TLS to ${authority} with the certificate`, () => probeHost(authority, pem));
    if (sandbox)
      await probeSandbox(findings, `TLS to ${sandbox} (sandbox) with the certificate`, () => probeHost(sandbox, pem));
    return;
  }
  const key = offline(findings, () => readApnsSigningKey(apple.keyFile!));
  if (!key) return;
  offline(findings, () =>
    signJwt({ alg: "ES256", kid: apple.keyId }, { iss: apple.teamId, iat: Math.floor(Date.now() / 1000) }, key),
  );
  findings.push({ level: "ok", text: `apple token key ${apple.keyId} (team ${apple.teamId}) signs` });
  await online(findings, `TLS to ${authority}`, () => probeHost(authority));
  if (sandbox) await probeSandbox(findings, `TLS to ${sandbox} (sandbox)`, () => probeHost(sandbox));
}

async function checkFirebase(firebase: NonNullable<AppConfig["firebase"]>, findings: Finding[]): Promise<void> {
  const account = offline(findings, () => readServiceAccount(firebase.serviceAccountFile));
  if (!account) return;
  findings.push({
    level: "ok",
    text: `firebase service account ${account.clientEmail} (project ${account.projectId})`,
  });
  // Bindings may only name these projects (RFC 8599 pn-param); without the key the plugin cannot check them.
  if (!firebase.projectIds) {
    findings.push({
      level: "warn",
      text: `firebase.projectIds is not set: REGISTERs naming any Firebase project are stored (pusher start fills it in its runtime copy; set it to ["${account.projectId}"], or run pusher apps add-firebase again)`,
    });
  } else if (firebase.projectIds.indexOf(account.projectId) < 0) {
    findings.push({
      level: "warn",
      text: `firebase.projectIds does not list the service account's own project ${account.projectId}: bindings naming it are refused`,
    });
  }
  const sessions = new ProviderSessions({ name: "oauth", logger: silentLogger });
  try {
    await online(findings, `OAuth token from ${account.tokenUri}`, () =>
      new OAuthTokens(sessions).accessToken(account),
    );
  } finally {
    await sessions.close();
  }
  await online(findings, `TLS to ${fcmAuthority(firebase.host)}`, () => probeHost(fcmAuthority(firebase.host)));
}

function checkWebPush(webpush: NonNullable<AppConfig["webpush"]>, findings: Finding[]): void {
  const key = offline(findings, () => readVapidKey(webpush.vapidKeyFile));
  if (!key) return;
  const publicKey = vapidPublicKey(key);
  if (webpush.publicKey !== undefined && webpush.publicKey !== publicKey) {
    findings.push({ level: "fail", text: `webpush.publicKey is not the public half of ${webpush.vapidKeyFile}` });
    return;
  }
  findings.push({ level: "ok", text: `webpush VAPID key (subject ${webpush.subject})` });
  // The plugin puts publicKey in the REGISTER 2xx (+sip.vapid, RFC 8599); without it the web app cannot learn it there.
  if (webpush.publicKey === undefined)
    findings.push({
      level: "warn",
      text: `webpush.publicKey is not set: REGISTER replies carry no +sip.vapid (set it to ${publicKey})`,
    });
}

/** The findings for one app, offline checks first. */
export async function checkApp(app: AppConfig): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (app.enabled === false) findings.push({ level: "warn", text: "disabled (enabled: false): no pushes are sent" });
  if (app.apple) await checkApple(app.apple, findings);
  if (app.firebase) await checkFirebase(app.firebase, findings);
  if (app.webpush) checkWebPush(app.webpush, findings);
  if (!app.apple && !app.firebase && !app.webpush) findings.push({ level: "fail", text: "no provider configured" });
  return findings;
}

const LABEL = { ok: "ok  ", warn: "WARN", fail: "FAIL" };

/** `pusher check`: one line for the config, one per app; exit 1 when anything failed. */
export async function runCheck(configPath: string): Promise<void> {
  const { path, exists, config } = loadConfig(configPath);
  console.log(
    `ok   config ${path}${exists ? "" : " (not found: defaults)"}: ${Object.keys(config.apps).length} app(s), ${config.userAgents.length} User-Agent rule(s)`,
  );
  // The Kamailio `pusher start` would run: a missing one or one below 5.6 fails the check.
  let kamailioFailed = false;
  try {
    const version = installedKamailioVersion();
    requireSupportedKamailio(version);
    console.log(`ok   ${version.text} (${version.path})`);
  } catch (error) {
    kamailioFailed = true;
    console.log(`FAIL ${(error as Error).message}`);
  }
  let clusterFailed = false;
  const clusterFindings = await checkCluster(config, runtimePaths(path, config).ctlSocket);
  if (clusterFindings.length) {
    clusterFailed = clusterFindings.some((f) => f.level === "fail");
    const level = clusterFailed ? "fail" : clusterFindings.some((f) => f.level === "warn") ? "warn" : "ok";
    console.log(
      `${LABEL[level]} cluster: ${clusterFindings.map((f) => (f.level === "ok" ? f.text : `${f.level.toUpperCase()} ${f.text}`)).join("; ")}`,
    );
  }
  let failed = 0;
  // The provider sessions unref() their sockets (the helper must not be kept up by them): hold the loop open.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    for (const appId of Object.keys(config.apps)) {
      const findings = await checkApp(config.apps[appId]);
      const level = findings.some((f) => f.level === "fail")
        ? "fail"
        : findings.some((f) => f.level === "warn")
          ? "warn"
          : "ok";
      if (level === "fail") failed++;
      console.log(
        `${LABEL[level]} ${appId}: ${findings.map((f) => (f.level === "ok" ? f.text : `${f.level.toUpperCase()} ${f.text}`)).join("; ")}`,
      );
    }
  } finally {
    clearInterval(keepAlive);
  }
  const failures = [
    ...(kamailioFailed ? ["Kamailio"] : []),
    ...(clusterFailed ? ["the cluster"] : []),
    ...(failed ? [`${failed} app(s)`] : []),
  ];
  if (failures.length) throw new CliError("PUSHER_ERR_CHECK", `${failures.join(" and ")} failed the check`);
}
