// Entry of dist/pusher-helper.js: reads the config, connects to Kamailio's evapi, answers each PushRequest
// with a PushResult. Usage: pusher-helper [--config FILE] [--link-port N] [--link-secret-file FILE]
// Config file: --config, else $PUSHER_CONFIG, else ./pusher.json; a missing file means the defaults.
// Link secret: --link-secret-file, else link.secret in the config's stateDir (the file Kamailio's
// PUSHER_LINK_SECRET_FILE names; `pusher start` passes its own).
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, validateConfig, type PusherConfig } from "../config";
import { ApnsSender } from "./apns-sender";
import { FcmSender } from "./fcm-sender";
import { WebPushSender } from "./webpush-sender";
import { KamailioLink, LINK_HOST } from "./kamailio-link";
import { createLogger } from "./logger";
import { createPushHandler, type PushHandlerOptions } from "./push-handler";
import { CredentialsAlarm } from "./credentials-alarm";
import { HelperMetrics, serveMetrics } from "./metrics";
import { KamailioStatsRequests } from "./kamailio-stats-requests";
import { changedFiles, credentialFingerprints } from "./credential-files";
import { LINK_SECRET_FILE_NAME, readLinkSecretFile } from "../link-secret-file";

const DEFAULT_CONFIG_FILE = "pusher.json";
// setInterval's largest delay; the interval only exists to hold the event loop open.
const KEEP_ALIVE_MS = 2 ** 31 - 1;

/** A startup problem reported as one line, e.g. `PUSHER_ERR_CONFIG pusher.json: link.port: must be …`. */
class StartupError extends Error {}

interface CommandLine {
  configFile: string;
  linkPort?: number;
  linkSecretFile?: string;
}

function readCommandLine(args: string[]): CommandLine {
  let values: { config?: string; "link-port"?: string; "link-secret-file"?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: "string" }, "link-port": { type: "string" }, "link-secret-file": { type: "string" } },
      strict: true,
    }));
  } catch (error) {
    throw new StartupError(
      `PUSHER_ERR_CONFIG ${(error as Error).message}; usage: pusher-helper [--config FILE] [--link-port N] [--link-secret-file FILE]`,
    );
  }
  const commandLine: CommandLine = { configFile: values.config ?? process.env.PUSHER_CONFIG ?? DEFAULT_CONFIG_FILE };
  if (values["link-secret-file"] !== undefined) commandLine.linkSecretFile = values["link-secret-file"];
  if (values["link-port"] !== undefined) {
    const port = Number(values["link-port"]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new StartupError("PUSHER_ERR_CONFIG --link-port: must be an integer from 1 to 65535");
    }
    commandLine.linkPort = port;
  }
  return commandLine;
}

async function loadConfig(file: string): Promise<{ config: PusherConfig; found: boolean }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { config: validateConfig({}), found: false };
    throw new StartupError(
      `PUSHER_ERR_CONFIG ${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new StartupError(`PUSHER_ERR_CONFIG ${file}: invalid JSON: ${(error as Error).message}`);
  }
  try {
    return { config: validateConfig(input), found: true };
  } catch (error) {
    if (error instanceof ConfigError) throw new StartupError(`${error.code} ${file}: ${error.message}`);
    throw error;
  }
}

async function main(): Promise<void> {
  let commandLine: CommandLine;
  let loaded: { config: PusherConfig; found: boolean };
  let linkSecretFile: string;
  try {
    commandLine = readCommandLine(process.argv.slice(2));
    loaded = await loadConfig(commandLine.configFile);
    // stateDir is relative to the config file's folder, as for `pusher start` (src/cli/kamailio-runtime.ts).
    linkSecretFile =
      commandLine.linkSecretFile ??
      join(resolve(dirname(commandLine.configFile), loaded.config.stateDir), LINK_SECRET_FILE_NAME);
    const secret = readLinkSecretFile(linkSecretFile);
    if (!("secret" in secret)) throw new StartupError(`PUSHER_ERR_LINK_SECRET ${linkSecretFile} ${secret.problem}`);
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    console.error(`pusher-helper: ${error.message.replace(/\s+/g, " ")}`);
    process.exitCode = 1;
    return;
  }
  const { found } = loaded;
  // Replaced whole by a reload (SIGHUP); everything that may change reads it through `current`.
  let config = loaded.config;
  const logger = createLogger(() => config.log.level);
  const linkPort = commandLine.linkPort ?? config.link.port;
  const appIds = Object.keys(config.apps);
  logger.info(
    `pusher-helper pid ${process.pid}: config ${commandLine.configFile}${found ? "" : " (not found, using defaults)"}, ` +
      `${appIds.length} app(s), Kamailio evapi at ${LINK_HOST}:${linkPort}`,
  );

  const senders = {
    apple: new ApnsSender({ logger }),
    firebase: new FcmSender({ logger }),
    webpush: new WebPushSender({ logger }),
  };
  const metrics = new HelperMetrics();
  // Connections to APNs are opened at start and after a reload, not by the first call's push.
  const connectApple = (current: PusherConfig): void => {
    for (const appId of Object.keys(current.apps)) {
      const app = current.apps[appId];
      if (app.apple && app.enabled !== false) senders.apple.connect(app.apple);
    }
  };
  // createPushHandler reads `apps` from this object at each push: a reload swaps it here.
  const alarm = new CredentialsAlarm(logger);
  const pushOptions: PushHandlerOptions = { apps: config.apps, senders, logger, metrics, alarm };
  const handlePush = createPushHandler(pushOptions);
  const link = new KamailioLink({
    port: linkPort,
    secretFile: linkSecretFile,
    logger,
    onMessage(message) {
      if (message.type === "stats") {
        kamailioStats.receive(message);
        return;
      }
      void handlePush(message).then((result) => {
        if (!link.send(result))
          logger.warn(`link: Kamailio not connected, result for call-id ${JSON.stringify(result.callId)} dropped`);
      });
    },
  });
  const kamailioStats = new KamailioStatsRequests((request) => link.send(request));
  // The link's reconnect timers are unref'd, so while Kamailio is down nothing else would keep this daemon up.
  const keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
  link.start();
  connectApple(config);
  metrics.linkUp = () => link.isConnected;
  const metricsServer =
    config.metrics.port > 0
      ? await serveMetrics(metrics, config.metrics.port, logger, () => kamailioStats.text())
      : null;

  // SIGHUP (`pusher reload`): read the file again; a broken one is refused whole and the running config stays.
  // Sessions bound to a changed certificate close once their in-flight pushes are answered; others stay.
  let fingerprints = credentialFingerprints(config);
  const reload = async (): Promise<void> => {
    let next: PusherConfig;
    try {
      const reloaded = await loadConfig(commandLine.configFile);
      if (!reloaded.found) throw new StartupError(`PUSHER_ERR_CONFIG ${commandLine.configFile}: not found`);
      next = reloaded.config;
    } catch (error) {
      if (!(error instanceof StartupError)) throw error;
      metrics.countReload("refused");
      logger.error(`config reload refused, the running config stays: ${error.message.replace(/\s+/g, " ")}`);
      return;
    }
    const nextFingerprints = credentialFingerprints(next);
    const changed = changedFiles(fingerprints, nextFingerprints);
    const restartOnly = (["link", "metrics"] as const).filter(
      (key) => JSON.stringify(next[key]) !== JSON.stringify(config[key]),
    );
    config = next;
    fingerprints = nextFingerprints;
    pushOptions.apps = next.apps;
    alarm.liftHolds(); // the credentials may be fixed now
    const appleCredentials = Object.keys(next.apps).flatMap((appId) =>
      next.apps[appId].apple ? [next.apps[appId].apple!] : [],
    );
    senders.apple.retireStale(appleCredentials, changed);
    connectApple(next);
    metrics.countReload("applied");
    logger.info(
      `config reloaded: ${Object.keys(next.apps).length} app(s), ${changed.size} credential file(s) new or changed, log level ${next.log.level}`,
    );
    for (const key of restartOnly)
      logger.warn(`config reload: ${key} changed; it takes effect when the helper restarts`);
  };
  process.on("SIGHUP", () => void reload());

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info(`stopping on ${signal}`);
    clearInterval(keepAlive);
    metricsServer?.close();
    void Promise.all([link.close(), senders.apple.close(), senders.firebase.close(), senders.webpush.close()]).then(
      () => {
        process.exitCode = 0;
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  console.error(`pusher-helper: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
