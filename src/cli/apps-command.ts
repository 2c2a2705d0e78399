// `pusher apps add-apple|list|remove`: Kazoo's `sup pusher_maintenance add_apple_app <AppId> <CertFile> [Host]`.
// Kazoo stored the PEM itself in system_config; we keep a 0600 copy next to the config and store its path.
import { chmodSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { DEFAULT_APPLE_HOST, checkHost } from "../config";
import { CliError, loadConfig, saveConfig, usageError, writeFileAtomic } from "./config-file";

// App ids become file names: reverse-DNS bundle ids (`com.example.phone.dev`) and nothing that can leave the directory.
const APP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface AppRow {
  appId: string;
  provider: "apple" | null;
  host?: string;
  certificateFile?: string;
}

type RawApps = { [appId: string]: { [key: string]: unknown } };

export function runApps(configPath: string, args: string[], json: boolean): void {
  const [subcommand, ...rest] = args;
  if (json && subcommand !== "list") throw usageError(`--json is only valid with "apps list"`);
  if (subcommand === "add-apple" && (rest.length === 2 || rest.length === 3)) return addApple(configPath, rest[0], rest[1], rest[2]);
  if (subcommand === "list" && rest.length === 0) return listApps(configPath, json);
  if (subcommand === "remove" && rest.length === 1) return removeApp(configPath, rest[0]);
  throw usageError(`expected "apps add-apple <app-id> <cert.pem> [host]", "apps list [--json]" or "apps remove <app-id>"`);
}

/** Where add-apple keeps its copy of an app's PEM. */
export function applePemPath(configPath: string, appId: string): string {
  return join(dirname(configPath), "credentials", appId + ".apple.pem");
}

function addApple(configPath: string, appId: string, pemFile: string, host = DEFAULT_APPLE_HOST): void {
  checkAppId(appId);
  checkHost(host, "host");
  let pem: string;
  try {
    pem = readFileSync(pemFile, "utf8");
  } catch (error) {
    throw new CliError("PUSHER_ERR_BAD_CERTIFICATE", `cannot read ${pemFile}: ${(error as Error).message}`);
  }
  const certificate = checkApplePem(pem, pemFile);

  const loaded = loadConfig(configPath);
  const certificateFile = applePemPath(loaded.path, appId);
  const apps = (loaded.raw.apps ?? {}) as RawApps;
  apps[appId] = { ...apps[appId], apple: { certificateFile, host } };
  loaded.raw.apps = apps;

  const credentialsDir = dirname(certificateFile);
  mkdirSync(credentialsDir, { recursive: true, mode: 0o700 });
  chmodSync(credentialsDir, 0o700);
  writeFileAtomic(certificateFile, pem);
  saveConfig(loaded.path, loaded.raw);
  console.log(`apple app ${appId} saved in ${loaded.path}: host ${host}, certificate ${certificateFile} (valid until ${certificate.validTo})`);
}

/**
 * Kazoo's pusher_util:binary_to_keycert/1 takes the first certificate and the first unencrypted private key;
 * it silently ignored an encrypted key. We refuse it, and a key that does not match or an expired certificate.
 */
export function checkApplePem(pem: string, file: string): X509Certificate {
  const bad = (problem: string) => new CliError("PUSHER_ERR_BAD_CERTIFICATE", `${file}: ${problem}`);
  const howTo = "the PEM must hold the certificate and its unencrypted private key (openssl pkcs12 -in cert.p12 -out cert.pem -clcerts -nodes)";
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
    const apple = config.apps[appId].apple;
    return apple ? { appId, provider: "apple", host: apple.host, certificateFile: apple.certificateFile } : { appId, provider: null };
  });
  if (json) console.log(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) console.log(`no apps in ${path}`);
  else for (const row of rows) console.log([row.appId, row.provider ?? "(no provider)", row.host ?? ""].join("\t").trimEnd());
}

function removeApp(configPath: string, appId: string): void {
  const loaded = loadConfig(configPath);
  const apps = loaded.raw.apps as RawApps | undefined;
  if (!apps || !Object.prototype.hasOwnProperty.call(apps, appId)) {
    throw new CliError("PUSHER_ERR_NO_SUCH_APP", `no app ${JSON.stringify(appId)} in ${loaded.path}`);
  }
  const certificateFile = loaded.config.apps[appId].apple?.certificateFile;
  delete apps[appId];
  saveConfig(loaded.path, loaded.raw);
  // Only delete the copy add-apple made, never a file the user pointed to by hand.
  if (APP_ID_PATTERN.test(appId) && certificateFile === applePemPath(loaded.path, appId)) rmSync(certificateFile, { force: true });
  console.log(`app ${appId} removed from ${loaded.path}`);
}

function checkAppId(appId: string): void {
  if (!APP_ID_PATTERN.test(appId)) {
    throw new CliError("PUSHER_ERR_BAD_APP_ID", `app id must be letters, digits, ".", "_" or "-" (e.g. com.example.phone), got ${JSON.stringify(appId)}`);
  }
}
