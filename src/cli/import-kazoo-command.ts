// `pusher import-kazoo <file> [--dry-run]`: moves Kazoo's `system_config/pusher` document into pusher.json
// (its schema: applications/crossbar/priv/couchdb/schemas/system_config.pusher.json of
// https://github.com/2600hz/kazoo). User-Agent rules come from `default.User-Agents`, apps from the per-app nodes
// (`<app-id>.apple`, `<app-id>.firebase`). Each item is checked on its own, so one bad
// certificate does not stop the rest; re-running is harmless (rules and apps are replaced by name).
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { DEFAULT_APPLE_HOST, checkHost, validateConfig } from "../config";
import { apnsAlertTopic, apnsTopic } from "../helper/apns-payload";
import { applePemPath, checkApplePem } from "./apps-command";
import { CliError, loadConfig, saveConfig, writeFileAtomic, type RawConfig } from "./config-file";

// The same rule as apps-command.ts: app ids become file names under credentials/.
const APP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// Kazoo's property keys (what a device's `push` object holds) → the Contact-param names of a rule's `properties`.
const KAZOO_PROPERTIES: { [kazooKey: string]: "appId" | "type" | "token" } = {
  "Token-App": "appId",
  "Token-Type": "type",
  "Token-ID": "token",
};

// Kazoo ≤ 4.2 spoke APNs' binary protocol to these hosts; the HTTP/2 API the helper uses lives elsewhere.
const BINARY_APNS_HOSTS: { [host: string]: string } = {
  "gateway.push.apple.com": "api.push.apple.com",
  "gateway.sandbox.push.apple.com": "api.sandbox.push.apple.com",
};

// The APNs sandbox (development builds' tokens) under both of Apple's names. Kazoo sent every push of an app to its
// one host, and its phones never say apns.dev: an app Kazoo pointed at the sandbox keeps it as host (its tokens are
// sandbox ones) and gets it as sandboxHost too, so apns.dev tokens go there as well and a BadDeviceToken is not tried
// again at the other name of the same sandbox.
const SANDBOX_APNS_HOSTS = ["api.sandbox.push.apple.com", "api.development.push.apple.com"];

type Json = { [key: string]: unknown };
type RawRule = { name?: unknown; [key: string]: unknown };
type RawApps = { [appId: string]: Json };

interface Report {
  imported: string[];
  skipped: string[];
  errors: string[];
}

/** A credential file to write once the new config is known to be valid. */
interface PendingFile {
  path: string;
  content: string;
}

/** One imported item: the line to print and the credential file it needs, if any. */
type Change = () => { line: string; file?: PendingFile };
type Attempt = (item: string, change: Change) => void;

function isObject(value: unknown): value is Json {
  return !!value && typeof value === "object" && !Array.isArray(value);
}

function isEmpty(value: unknown): boolean {
  return value === undefined || (isObject(value) && Object.keys(value).length === 0);
}

export function runImportKazoo(configPath: string, file: string, dryRun: boolean): void {
  const document = readKazooDocument(file);
  const loaded = loadConfig(configPath);
  const raw: RawConfig = structuredClone(loaded.raw);
  const report: Report = { imported: [], skipped: [], errors: [] };
  const files: PendingFile[] = [];
  const verb = dryRun ? "would import" : "imported";

  // Applies one change to `raw` and keeps it only if the whole config still validates; else undoes it.
  const attempt: Attempt = (item, change) => {
    const before = structuredClone(raw);
    try {
      const { line, file } = change();
      validateConfig(raw);
      if (file) files.push(file);
      report.imported.push(`${verb} ${line}`);
    } catch (error) {
      for (const key of Object.keys(raw)) delete raw[key];
      Object.assign(raw, before);
      report.errors.push(`${item}: ${(error as Error).message}`);
    }
  };

  const defaults = isObject(document.default) ? document.default : {};
  for (const node of Object.keys(document)) {
    const value = document[node];
    // CouchDB's own keys and Kazoo's private ones are not configuration.
    if (node.startsWith("_") || node.startsWith("pvt_") || node === "id") continue;
    if (node === "default") importDefaults(value, raw, report, attempt);
    else if (
      isObject(value) &&
      (value.apple !== undefined || value.firebase !== undefined || value.google !== undefined)
    ) {
      importApp(node, value, defaults, loaded.path, raw, report, attempt);
    } else if (isObject(value) && value["User-Agents"] !== undefined) {
      report.skipped.push(
        `${node}.User-Agents: rules for one Kazoo node only; pusher.json has one list for all, add them with pusher ua add if this node needs them`,
      );
    } else if (node === "modules" || node === "google") {
      report.skipped.push(`${node}: Kazoo ≤ 4.2 setting, nothing to import`);
    } else {
      report.skipped.push(`${node}: neither "default" nor an app with "apple" or "firebase"`);
    }
  }

  for (const line of report.imported) console.log(line);
  for (const line of report.skipped) console.log(`skipped ${line}`);
  for (const line of report.errors) console.error(`error ${line}`);

  if (report.imported.length > 0 && !dryRun) {
    // Credentials first (0600, directory 0700), then the config that names them.
    for (const pending of files) {
      mkdirSync(dirname(pending.path), { recursive: true, mode: 0o700 });
      chmodSync(dirname(pending.path), 0o700);
      writeFileAtomic(pending.path, pending.content);
    }
    saveConfig(loaded.path, raw);
  }
  const written =
    report.imported.length === 0 ? "nothing written" : dryRun ? "dry run, nothing written" : `${loaded.path} updated`;
  console.log(
    `${report.imported.length} imported, ${report.skipped.length} skipped, ${report.errors.length} failed; ${written}`,
  );
  if (report.errors.length > 0) {
    throw new CliError(
      "PUSHER_ERR_IMPORT",
      `${report.errors.length} item(s) of ${file} could not be imported (see above); fix them and run import-kazoo again`,
    );
  }
  if (report.imported.length === 0) throw new CliError("PUSHER_ERR_IMPORT", `nothing to import from ${file}`);
}

/** The document as Kazoo keeps it, bare or in CouchDB's wrapper, or as the Kazoo API returns it ({data: …}). */
function readKazooDocument(file: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new CliError("PUSHER_ERR_IMPORT", `cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  if (isObject(parsed) && isObject(parsed.data) && typeof parsed.status === "string") parsed = parsed.data;
  if (!isObject(parsed))
    throw new CliError("PUSHER_ERR_IMPORT", `${file}: expected the system_config/pusher JSON object`);
  return parsed;
}

/** `default.User-Agents.<name>` → userAgents rules, in the document's order (Kazoo's first match wins too). */
function importDefaults(value: unknown, raw: RawConfig, report: Report, attempt: Attempt): void {
  if (!isObject(value)) return;
  for (const key of Object.keys(value)) {
    // default.apple / default.firebase are Kazoo's written-back defaults: read as fallbacks by importApp.
    if (key === "apple" || key === "firebase") continue;
    if (key !== "User-Agents") report.skipped.push(`default.${key}: not a pusher setting`);
  }
  const rules = value["User-Agents"];
  if (rules === undefined) return;
  if (!isObject(rules)) {
    report.errors.push(`default.User-Agents: must be an object of rules`);
    return;
  }
  for (const name of Object.keys(rules)) {
    const item = `default.User-Agents.${name}`;
    const rule = rules[name];
    if (!isObject(rule) || typeof rule.regex !== "string") {
      // Kazoo's default regex ^$ only matches an empty User-Agent: such a rule never did anything.
      report.skipped.push(`${item}: no regex`);
      continue;
    }
    const properties: { [key: string]: string } = {};
    if (isObject(rule.properties)) {
      for (const [kazooKey, paramName] of Object.entries(rule.properties)) {
        const ours = KAZOO_PROPERTIES[kazooKey];
        if (ours && typeof paramName === "string") properties[ours] = paramName;
        else
          report.skipped.push(
            `${item}.properties.${kazooKey}: pusher reads only Token-App, Token-Type and Token-ID from the Contact`,
          );
      }
    }
    attempt(item, () => {
      const list = (raw.userAgents ?? []) as RawRule[];
      const index = list.findIndex((existing) => existing.name === name);
      const imported: RawRule = { name, regex: rule.regex };
      if (Object.keys(properties).length > 0) imported.properties = properties;
      // Replacing keeps the rule's place and the keys only pusher has (appIds, strategy, timers).
      if (index >= 0) list[index] = { ...list[index], ...imported };
      else list.push(imported);
      raw.userAgents = list;
      const params = Object.keys(properties).length
        ? `, params ${Object.entries(properties)
            .map(([k, v]) => `${k}=${v}`)
            .join(",")}`
        : "";
      return {
        line: `user agent rule ${name} ${JSON.stringify(rule.regex)}${params}${index >= 0 ? " (replaced)" : ""}`,
      };
    });
  }
}

function importApp(
  appId: string,
  node: Json,
  defaults: Json,
  configPath: string,
  raw: RawConfig,
  report: Report,
  attempt: Attempt,
): void {
  if (!APP_ID_PATTERN.test(appId)) {
    report.errors.push(`${appId}: app id must be letters, digits, ".", "_" or "-"`);
    return;
  }
  for (const provider of ["firebase", "google"]) {
    const section = node[provider];
    if (section === undefined) continue;
    const hasKey = typeof section === "string" || (isObject(section) && section.api_key !== undefined);
    if (hasKey) {
      report.skipped.push(
        `${appId}.${provider}${typeof section === "string" ? "" : ".api_key"}: a legacy FCM server key, and Google shut the legacy API down in 2024; ` +
          `re-add the app with: pusher apps add-firebase ${appId} <service-account.json>`,
      );
    } else report.skipped.push(`${appId}.${provider}: no credentials to import`);
  }
  for (const key of Object.keys(node)) {
    if (!["apple", "firebase", "google"].includes(key)) report.skipped.push(`${appId}.${key}: not a pusher setting`);
  }
  if (node.apple === undefined) return;
  const apple = isObject(node.apple) ? node.apple : {};
  const appleDefaults = isObject(defaults.apple) ? defaults.apple : {};
  const item = `${appId}.apple`;
  if (typeof apple.certificate !== "string") {
    report.skipped.push(
      `${item}: no certificate (token auth is new in pusher: pusher apps add-apple-token ${appId} …)`,
    );
    return;
  }
  for (const key of ["headers", "extra_headers"]) {
    if (!isEmpty(apple[key]))
      report.skipped.push(`${item}.${key}: pusher sets the APNs headers itself (VoIP push, priority 10, expiration 0)`);
  }
  const topic = apple.apns_topic;
  if (typeof topic === "string" && topic !== apnsTopic(appId) && topic !== apnsAlertTopic(appId)) {
    report.skipped.push(
      `${item}.apns_topic: pusher sends to the topic derived from the app id (${apnsTopic(appId)}), not ${topic}`,
    );
  }
  attempt(item, () => {
    const certificate = checkApplePem(apple.certificate as string, `${item}.certificate`);
    let host =
      typeof apple.host === "string"
        ? apple.host
        : typeof appleDefaults.host === "string"
          ? appleDefaults.host
          : DEFAULT_APPLE_HOST;
    const modern = BINARY_APNS_HOSTS[host.replace(/:\d+$/, "")];
    if (modern) {
      report.skipped.push(`${item}.host ${host}: APNs' retired binary protocol, replaced by ${modern}`);
      host = modern;
    }
    checkHost(host, `${item}.host`);
    const sandbox = SANDBOX_APNS_HOSTS.includes(host.replace(/:\d+$/, "").toLowerCase());
    const apps = (raw.apps ?? {}) as RawApps;
    const copy = applePemPath(configPath, appId);
    const previous = apps[appId] ?? {};
    apps[appId] = { ...previous, apple: { certificateFile: copy, host, ...(sandbox ? { sandboxHost: host } : {}) } };
    const enabled = apple.enabled ?? appleDefaults.enabled;
    let state = "";
    if (enabled === false) {
      // pusher's switch is per app: turning it off would also silence the app's other providers.
      if (previous.firebase !== undefined || previous.webpush !== undefined) {
        report.skipped.push(
          `${item}.enabled false: pusher's switch is per app and ${appId} has other providers; set apps.${appId}.enabled by hand`,
        );
      } else {
        apps[appId].enabled = false;
        state = ", disabled (apple.enabled false)";
      }
    }
    raw.apps = apps;
    return {
      line: `apple app ${appId}: host ${host}${sandbox ? " (the APNs sandbox: sandboxHost too)" : ""}, certificate ${copy} (valid until ${certificate.validTo})${state}`,
      file: { path: copy, content: apple.certificate as string },
    };
  });
}
