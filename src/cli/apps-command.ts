// `pusher apps add-apple|add-apple-token|add-firebase|add-webpush|list|remove|enable|disable`: Kazoo's
// `sup pusher_maintenance add_apple_app <AppId> <CertFile> [Host]` and its siblings. Kazoo stored the secrets
// in system_config; we keep a 0600 copy under credentials/ next to the config and store its path.
import { chmodSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { DEFAULT_APPLE_HOST, DEFAULT_FIREBASE_HOST, checkHost, validateConfig } from "../config";
import type { ErrorCode } from "../errors";
import { LEGACY_KEY_MESSAGE, looksLikeLegacyServerKey, parseServiceAccount } from "../helper/fcm-oauth";
import { PusherError } from "../helper/provider-errors";
import { vapidPublicKey } from "../helper/webpush-sender";
import { CliError, loadConfig, saveConfig, usageError, writeFileAtomic, type RawConfig } from "./config-file";

// App ids become file names: reverse-DNS bundle ids (`com.example.phone.dev`) and nothing that can leave the directory.
const APP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface AppRow {
  appId: string;
  /** The first configured provider (kept for scripts written against earlier releases). */
  provider: "apple" | "firebase" | "webpush" | null;
  providers: ("apple" | "firebase" | "webpush")[];
  enabled: boolean;
  host?: string;
  /** Where pushes for sandbox tokens go (apns.dev bindings, and a token production refused). */
  sandboxHost?: string;
  certificateFile?: string;
  keyFile?: string;
  keyId?: string;
  teamId?: string;
  serviceAccountFile?: string;
  firebaseHost?: string;
  vapidKeyFile?: string;
  vapidPublicKey?: string;
  subject?: string;
}

type RawApps = { [appId: string]: { [key: string]: unknown } };

export function runApps(
  configPath: string,
  args: string[],
  json: boolean,
  options: { [name: string]: string } = {},
): void {
  const [subcommand, ...rest] = args;
  if (json && subcommand !== "list") throw usageError(`--json is only valid with "apps list"`);
  const allowed: { [subcommand: string]: string[] } = {
    "add-apple": ["--sandbox-host"],
    "add-apple-token": ["--key-file", "--key-id", "--team-id", "--host", "--sandbox-host"],
    "add-firebase": ["--host"],
    "add-webpush": ["--vapid-key", "--subject", "--endpoint-hosts"],
  };
  for (const name of Object.keys(options)) {
    if (!(allowed[subcommand] ?? []).includes(name))
      throw usageError(`${name} is not an option of "apps ${subcommand ?? ""}"`);
  }
  if (subcommand === "add-apple" && (rest.length === 2 || rest.length === 3))
    return addApple(configPath, rest[0], rest[1], rest[2], options["--sandbox-host"]);
  if (subcommand === "add-apple-token" && rest.length === 1) return addAppleToken(configPath, rest[0], options);
  if (subcommand === "add-firebase" && rest.length === 2)
    return addFirebase(configPath, rest[0], rest[1], options["--host"]);
  if (subcommand === "add-webpush" && rest.length === 1) return addWebPush(configPath, rest[0], options);
  if (subcommand === "list" && rest.length === 0) return listApps(configPath, json);
  if (subcommand === "remove" && rest.length === 1) return removeApp(configPath, rest[0]);
  if ((subcommand === "enable" || subcommand === "disable") && rest.length === 1)
    return setEnabled(configPath, rest[0], subcommand === "enable");
  throw usageError(
    `expected "apps add-apple <app-id> <cert.pem> [host] [--sandbox-host H]", "apps add-apple-token <app-id> --key-file F --key-id K --team-id T [--host H] [--sandbox-host H]", ` +
      `"apps add-firebase <app-id> <service-account.json> [--host H]", "apps add-webpush <app-id> --vapid-key F --subject S [--endpoint-hosts H,…]", ` +
      `"apps list [--json]", "apps remove <app-id>" or "apps enable|disable <app-id>"`,
  );
}

/** Where add-apple keeps its copy of an app's PEM. */
export function applePemPath(configPath: string, appId: string): string {
  return join(dirname(configPath), "credentials", appId + ".apple.pem");
}

/** `apple.sandboxHost` as the option gives it: only when given (the config's default is Apple's sandbox). */
function sandboxHostOf(sandboxHost: string | undefined): { sandboxHost?: string } {
  if (sandboxHost === undefined) return {};
  checkHost(sandboxHost, "--sandbox-host");
  return { sandboxHost };
}

/** ", sandbox host H" for the saved line when --sandbox-host was given. */
function sandboxHostText(section: { sandboxHost?: string }): string {
  return section.sandboxHost === undefined ? "" : `, sandbox host ${section.sandboxHost}`;
}

function addApple(
  configPath: string,
  appId: string,
  pemFile: string,
  host = DEFAULT_APPLE_HOST,
  sandboxHostOption?: string,
): void {
  checkAppId(appId);
  checkHost(host, "host");
  const sandboxHost = sandboxHostOf(sandboxHostOption);
  let pem: string;
  try {
    pem = readFileSync(pemFile, "utf8");
  } catch (error) {
    throw new CliError("PUSHER_ERR_BAD_CERTIFICATE", `cannot read ${pemFile}: ${(error as Error).message}`);
  }
  const certificate = checkApplePem(pem, pemFile);
  const certificateFile = saveApp(configPath, appId, "apple", applePemPath, pem, (file) => ({
    certificateFile: file,
    host,
    ...sandboxHost,
  }));
  console.log(
    `apple app ${appId} saved: host ${host}${sandboxHostText(sandboxHost)}, certificate ${certificateFile} (valid until ${certificate.validTo})`,
  );
}

/** Copies the credential to credentials/ (0600, directory 0700) and stores `provider`'s section for the app. */
function saveApp(
  configPath: string,
  appId: string,
  provider: "apple" | "firebase" | "webpush",
  copyPath: (configPath: string, appId: string) => string,
  content: string,
  section: (copy: string) => { [key: string]: unknown },
): string {
  const loaded = loadConfig(configPath);
  const copy = copyPath(loaded.path, appId);
  const apps = (loaded.raw.apps ?? {}) as RawApps;
  const previous = apps[appId];
  apps[appId] = { ...previous, [provider]: section(copy) };
  loaded.raw.apps = apps;
  // Validate before any file is written: a refused config leaves no stray credential copy behind.
  withConfigCheck(loaded.path, loaded.raw);
  const credentialsDir = dirname(copy);
  mkdirSync(credentialsDir, { recursive: true, mode: 0o700 });
  chmodSync(credentialsDir, 0o700);
  writeFileAtomic(copy, content);
  saveConfig(loaded.path, loaded.raw);
  // add-apple and add-apple-token replace each other: remove the other kind's copy.
  const previousApple = previous?.apple as { certificateFile?: unknown; keyFile?: unknown } | undefined;
  if (provider === "apple" && previousApple) {
    for (const file of [previousApple.certificateFile, previousApple.keyFile]) {
      if (
        typeof file === "string" &&
        file !== copy &&
        (file === applePemPath(loaded.path, appId) || file === appleKeyPath(loaded.path, appId))
      )
        rmSync(file, { force: true });
    }
  }
  console.log(`config ${loaded.path} updated`);
  return copy;
}

function withConfigCheck(path: string, raw: RawConfig): void {
  try {
    validateConfig(raw);
  } catch (error) {
    if ((error as CliError).code === "PUSHER_ERR_CONFIG")
      (error as Error).message = `${path} not changed: ${(error as Error).message}`;
    throw error;
  }
}

export function appleKeyPath(configPath: string, appId: string): string {
  return join(dirname(configPath), "credentials", appId + ".apple.p8");
}

export function firebaseAccountPath(configPath: string, appId: string): string {
  return join(dirname(configPath), "credentials", appId + ".firebase.json");
}

export function webPushKeyPath(configPath: string, appId: string): string {
  return join(dirname(configPath), "credentials", appId + ".webpush.pem");
}

function readCredential(file: string | undefined, what: string, code: ErrorCode): string {
  if (!file) throw usageError(`${what} is required`);
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(code, `cannot read ${file}: ${(error as Error).message}`);
  }
}

/** `apps add-apple-token`: Apple's AuthKey_<KEYID>.p8 (EC P-256, PKCS#8), its Key ID and the Team ID. */
function addAppleToken(configPath: string, appId: string, options: { [name: string]: string }): void {
  checkAppId(appId);
  const host = options["--host"] ?? DEFAULT_APPLE_HOST;
  checkHost(host, "--host");
  const sandboxHost = sandboxHostOf(options["--sandbox-host"]);
  const keyId = options["--key-id"];
  const teamId = options["--team-id"];
  if (!keyId || !teamId) throw usageError("--key-id and --team-id are required");
  for (const [name, value] of [
    ["--key-id", keyId],
    ["--team-id", teamId],
  ]) {
    if (!/^[A-Z0-9]{10}$/.test(value))
      throw new CliError(
        "PUSHER_ERR_BAD_KEY",
        `${name} must be 10 upper-case letters and digits as Apple shows it, got ${JSON.stringify(value)}`,
      );
  }
  const keyFile = options["--key-file"];
  const pem = readCredential(keyFile, "--key-file", "PUSHER_ERR_BAD_KEY");
  try {
    readApnsSigningKeyFromPem(pem);
  } catch (error) {
    throw new CliError("PUSHER_ERR_BAD_KEY", `${keyFile}: ${(error as Error).message}`);
  }
  const copy = saveApp(configPath, appId, "apple", appleKeyPath, pem, (file) => ({
    keyFile: file,
    keyId,
    teamId,
    host,
    ...sandboxHost,
  }));
  console.log(
    `apple app ${appId} saved: token auth, key ${keyId} of team ${teamId}, host ${host}${sandboxHostText(sandboxHost)}, key copied to ${copy}`,
  );
}

function readApnsSigningKeyFromPem(pem: string): void {
  if (pem.includes("ENCRYPTED")) throw new Error("the key is encrypted; Apple's .p8 is not");
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("not an EC P-256 private key (Apple's AuthKey_<KEYID>.p8 is one)");
  }
}

/** `apps add-firebase`: a service account JSON (FCM HTTP v1); a legacy server key is refused with the way out. */
function addFirebase(configPath: string, appId: string, accountFile: string, host = DEFAULT_FIREBASE_HOST): void {
  checkAppId(appId);
  checkHost(host, "--host");
  if (looksLikeLegacyServerKey(accountFile)) throw new CliError("PUSHER_ERR_FCM_LEGACY_KEY", LEGACY_KEY_MESSAGE);
  const text = readCredential(accountFile, "<service-account.json>", "PUSHER_ERR_FCM_CREDENTIALS");
  let account;
  try {
    account = parseServiceAccount(text, accountFile);
  } catch (error) {
    throw new CliError(
      error instanceof PusherError ? error.code : "PUSHER_ERR_FCM_CREDENTIALS",
      (error as Error).message,
    );
  }
  // The plugin never reads key files: the project a binding may name (RFC 8599 pn-param) is written here.
  const copy = saveApp(configPath, appId, "firebase", firebaseAccountPath, text, (file) => ({
    serviceAccountFile: file,
    host,
    projectIds: [account.projectId],
  }));
  console.log(
    `firebase app ${appId} saved: project ${account.projectId} (projectIds), service account ${account.clientEmail}, host ${host}, JSON copied to ${copy}`,
  );
}

/** `apps add-webpush`: a VAPID P-256 private key and the operator's contact (RFC 8292). */
function addWebPush(configPath: string, appId: string, options: { [name: string]: string }): void {
  checkAppId(appId);
  const subject = options["--subject"];
  if (!subject) throw usageError("--subject is required (mailto:you@example.com or https://…)");
  const keyFile = options["--vapid-key"];
  const pem = readCredential(keyFile, "--vapid-key", "PUSHER_ERR_BAD_KEY");
  let publicKey: string;
  try {
    readApnsSigningKeyFromPem(pem);
    publicKey = vapidPublicKey(createPrivateKey(pem));
  } catch (error) {
    throw new CliError(
      "PUSHER_ERR_BAD_KEY",
      `${keyFile}: ${(error as Error).message.replace("Apple's AuthKey_<KEYID>.p8 is one", "create one with: openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt")}`,
    );
  }
  // Push services subscriptions may point at; without the option, the browsers' (src/webpush-endpoint.ts).
  const endpointHosts = options["--endpoint-hosts"]
    ? { endpointHosts: options["--endpoint-hosts"].split(",").map((host) => host.trim()) }
    : {};
  const copy = saveApp(configPath, appId, "webpush", webPushKeyPath, pem, (file) => ({
    vapidKeyFile: file,
    subject,
    publicKey,
    ...endpointHosts,
  }));
  console.log(`webpush app ${appId} saved: subject ${subject}, key copied to ${copy}`);
  console.log(`VAPID public key (+sip.vapid, applicationServerKey): ${publicKey}`);
}

/**
 * Kazoo's pusher_util:binary_to_keycert/1 takes the first certificate and the first unencrypted private key;
 * it silently ignored an encrypted key. We refuse it, and a key that does not match or an expired certificate.
 */
export function checkApplePem(pem: string, file: string): X509Certificate {
  const bad = (problem: string) => new CliError("PUSHER_ERR_BAD_CERTIFICATE", `${file}: ${problem}`);
  const howTo =
    "the PEM must hold the certificate and its unencrypted private key (openssl pkcs12 -in cert.p12 -out cert.pem -clcerts -nodes)";
  if (pem.includes("ENCRYPTED")) throw bad("the private key is encrypted; " + howTo);
  const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!certificateBlock) throw bad("no certificate found; " + howTo);
  const keyBlock = /-----BEGIN (RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END \1PRIVATE KEY-----/.exec(pem);
  if (!keyBlock) throw bad("no private key found; " + howTo);

  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificateBlock[0]);
  } catch (error) {
    throw bad("the certificate cannot be read: " + (error as Error).message);
  }
  let key;
  try {
    key = createPrivateKey(keyBlock[0]);
  } catch (error) {
    throw bad("the private key cannot be read: " + (error as Error).message);
  }
  if (!certificate.checkPrivateKey(key)) throw bad("the private key does not belong to the certificate");
  if (Date.parse(certificate.validTo) < Date.now()) throw bad("the certificate expired on " + certificate.validTo);
  return certificate;
}

function listApps(configPath: string, json: boolean): void {
  const { path, config } = loadConfig(configPath);
  const rows: AppRow[] = Object.keys(config.apps).map((appId) => {
    const app = config.apps[appId];
    const providers = (["apple", "firebase", "webpush"] as const).filter((provider) => app[provider] !== undefined);
    const row: AppRow = { appId, provider: providers[0] ?? null, providers, enabled: app.enabled !== false };
    if (app.apple) {
      row.host = app.apple.host;
      row.sandboxHost = app.apple.sandboxHost;
      if (app.apple.certificateFile) row.certificateFile = app.apple.certificateFile;
      if (app.apple.keyFile)
        Object.assign(row, { keyFile: app.apple.keyFile, keyId: app.apple.keyId, teamId: app.apple.teamId });
    }
    if (app.firebase)
      Object.assign(row, { serviceAccountFile: app.firebase.serviceAccountFile, firebaseHost: app.firebase.host });
    if (app.webpush) {
      Object.assign(row, { vapidKeyFile: app.webpush.vapidKeyFile, subject: app.webpush.subject });
      if (app.webpush.publicKey) row.vapidPublicKey = app.webpush.publicKey;
    }
    return row;
  });
  if (json) console.log(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) console.log(`no apps in ${path}`);
  else {
    for (const row of rows) {
      const hosts = [row.host, row.firebaseHost].filter(Boolean).join(" ");
      console.log(
        [row.appId, row.providers.join(",") || "(no provider)", hosts, row.enabled ? "" : "disabled"]
          .join("\t")
          .trimEnd(),
      );
    }
  }
}

function removeApp(configPath: string, appId: string): void {
  const loaded = loadConfig(configPath);
  const apps = loaded.raw.apps as RawApps | undefined;
  if (!apps || !Object.prototype.hasOwnProperty.call(apps, appId)) {
    throw new CliError("PUSHER_ERR_NO_SUCH_APP", `no app ${JSON.stringify(appId)} in ${loaded.path}`);
  }
  const app = loaded.config.apps[appId];
  delete apps[appId];
  saveConfig(loaded.path, loaded.raw);
  // Only delete the copies the add-… commands made, never a file the user pointed to by hand.
  if (APP_ID_PATTERN.test(appId)) {
    const copies: [string | undefined, string][] = [
      [app.apple?.certificateFile, applePemPath(loaded.path, appId)],
      [app.apple?.keyFile, appleKeyPath(loaded.path, appId)],
      [app.firebase?.serviceAccountFile, firebaseAccountPath(loaded.path, appId)],
      [app.webpush?.vapidKeyFile, webPushKeyPath(loaded.path, appId)],
    ];
    for (const [configured, copy] of copies) if (configured === copy) rmSync(copy, { force: true });
  }
  console.log(`app ${appId} removed from ${loaded.path}`);
}

/** Kazoo's per-app `enabled` toggle: a disabled app keeps its credentials but gets no pushes (`pusher reload`). */
function setEnabled(configPath: string, appId: string, enabled: boolean): void {
  const loaded = loadConfig(configPath);
  const apps = loaded.raw.apps as RawApps | undefined;
  if (!apps || !Object.prototype.hasOwnProperty.call(apps, appId)) {
    throw new CliError("PUSHER_ERR_NO_SUCH_APP", `no app ${JSON.stringify(appId)} in ${loaded.path}`);
  }
  const app = apps[appId] as { [key: string]: unknown };
  if (enabled)
    delete app.enabled; // enabled is the default
  else app.enabled = false;
  saveConfig(loaded.path, loaded.raw);
  console.log(
    `app ${appId} ${enabled ? "enabled" : "disabled"} in ${loaded.path} (pusher reload applies it to a running pusher)`,
  );
}

function checkAppId(appId: string): void {
  if (!APP_ID_PATTERN.test(appId)) {
    throw new CliError(
      "PUSHER_ERR_BAD_APP_ID",
      `app id must be letters, digits, ".", "_" or "-" (e.g. com.example.phone), got ${JSON.stringify(appId)}`,
    );
  }
}
