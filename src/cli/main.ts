// The `pusher` command: parses the command line by hand, dispatches, and owns the one error handler.
import { checkListen } from "../config";
import { runApps } from "./apps-command";
import { runTestPush } from "./test-push-command";
import { runUsers } from "./users-command";
import { CliError, readConfigFile, resolveConfigPath, usageError } from "./config-file";
import { runDevices } from "./devices-command";
import { runImportKazoo } from "./import-kazoo-command";
import { runStart } from "./start";
import { ClusterOptions, withClusterOptions } from "./cluster-options";
import { runCheck } from "./check-command";
import { runMetrics } from "./metrics-command";
import { runReload } from "./reload-command";
import { RULE_OPTIONS, RuleOptions, runUserAgents } from "./ua-command";

const USAGE = `Usage: pusher [--config FILE] <command> [arguments]

Commands:
  apps add-apple <app-id> <cert.pem> [host] [--sandbox-host host[:port]]
                          add or replace an APNs app; the PEM holds the certificate and its unencrypted
                          private key and is copied to credentials/ next to the config; host defaults to
                          api.push.apple.com (production), host:port allowed; sandbox tokens (apns.dev) go to
                          --sandbox-host (apple.sandboxHost, default api.sandbox.push.apple.com)
  apps add-apple-token <app-id> --key-file <AuthKey.p8> --key-id <KEYID> --team-id <TEAMID> [--host host[:port]]
        [--sandbox-host host[:port]]
                          add or replace an APNs app with token auth (one JWT per key, refreshed every 50 min);
                          the .p8 is copied to credentials/ (mode 0600)
  apps add-firebase <app-id> <service-account.json> [--host host[:port]]
                          add or replace an FCM HTTP v1 app; the service account JSON is copied to credentials/
  apps add-webpush <app-id> --vapid-key <p256.pem> --subject mailto:...|https://... [--endpoint-hosts h1,*.h2]
                          add or replace a Web Push app; prints the VAPID public key (+sip.vapid)
  apps list [--json]      list apps with provider and host
  apps remove <app-id>    remove an app and the certificate copy add-apple made
  apps enable|disable <app-id>
                          Kazoo's per-app toggle: a disabled app keeps its credentials but gets no pushes
  test-push <app-id> <token> [--type apple|firebase|webpush]
                          send one test push and print the provider's answer; exit 0 only if it was accepted
                          (webpush: the token is the subscription JSON {"endpoint":…,"keys":{"p256dh":…,"auth":…}},
                          or the endpoint URL alone, as RFC 8599's pn-prid: a push without payload)
  devices [aor] [--json] [--show-tokens]
                          list the push device records of the running Kamailio (all, or one AOR);
                          tokens are masked unless --show-tokens; all of a node with more than 200 AORs
                          come from the device database (sqlite3, or psql on a cluster node)
  ua add <name> <regex> [--app-ids a,b] [--params appId=P,type=P,token=P] [--strategy <calls.strategy value>]
                          add a User-Agent rule at the end, or replace the rule with that name; --app-ids
                          accepts only those apps, --params names the Contact params of legacy bindings
  ua list [--json]        list User-Agent rules in order (the first match wins)
  ua remove <name>        remove a User-Agent rule
  users add <user@domain> <password>
                          add or change a SIP user whose REGISTERs the reference cfg accepts (sip.auth);
                          only HA1 is stored, in users.sqlite in the state dir (needs Debian's sqlite3)
  users list [--json], users remove <user@domain>
  import-kazoo <system_config-pusher.json> [--dry-run]
                          import Kazoo's system_config/pusher document: User-Agent rules and APNs certificate
                          apps; prints each item, and what was skipped and why
  start [--listen proto:ip:port]... [--insecure-no-auth]
        [--node-id N --nodes M --dmq-listen ip:port --peers host:port,... --database postgres://...]
                          run pusher; the default listen addresses are sip.listen from the config. With
                          sip.auth false it refuses a listen address other than loopback, unless
                          --insecure-no-auth insists. The cluster options run node N of M (each instead of
                          its cluster.* key): DMQ on udp ip:port, the other nodes' DMQ addresses, the
                          PostgreSQL database of the device records
  reload [--kamailio-ctl SOCKET] [--helper-pid-file FILE|PID]
                          apply a changed config to the running Kamailio and helper without a restart (held
                          calls keep waiting); a config that does not validate is refused and the running one
                          stays; start's cluster options still replace cluster.* (a change there needs a
                          restart). Defaults: pusher start's (state dir); give both options for your own Kamailio
  metrics [--kamailio-ctl SOCKET]
                          print the helper's and Kamailio's counters as Prometheus text
  check                   validate the config, the Kamailio in PATH (5.6 or later) and each app's credentials
                          offline and online (expiry, keys, OAuth token, TLS to each host); one line per app,
                          exit 1 on any failure
  help                    show this text

Options:
  --config FILE           the config file (default: $PUSHER_CONFIG, else ./pusher.json)
  --                      end of options: what follows are arguments (e.g. a regex starting with -)

Exit codes: 0 success, 1 runtime or configuration error, 2 usage error.`;

const VALUE_OPTIONS = ["--config", "--listen", "--kamailio-ctl", "--helper-pid-file"];
// `start`'s cluster options, each instead of a cluster.* key of the config.
const CLUSTER_OPTIONS: { [option: string]: keyof ClusterOptions } = {
  "--node-id": "nodeId",
  "--nodes": "nodes",
  "--dmq-listen": "dmqListen",
  "--peers": "peers",
  "--database": "database",
};
VALUE_OPTIONS.push(...Object.keys(CLUSTER_OPTIONS));
// Options of `apps add-apple-token|add-firebase|add-webpush` and `test-push`.
const PROVIDER_OPTIONS = [
  "--key-file",
  "--key-id",
  "--team-id",
  "--host",
  "--sandbox-host",
  "--vapid-key",
  "--subject",
  "--endpoint-hosts",
  "--type",
];
VALUE_OPTIONS.push(...PROVIDER_OPTIONS);
VALUE_OPTIONS.push(...RULE_OPTIONS);
const FLAG_OPTIONS = ["--json", "--help", "--show-tokens", "--dry-run", "--insecure-no-auth"];

interface CommandLine {
  words: string[];
  options: { [name: string]: string[] };
}

function parseCommandLine(argv: string[]): CommandLine {
  const words: string[] = [];
  const options: { [name: string]: string[] } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] === "-h" ? "--help" : argv[i];
    if (arg === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      words.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    let value = "";
    if (VALUE_OPTIONS.includes(name)) {
      const given = equals > 0 ? arg.slice(equals + 1) : argv[++i];
      if (given === undefined || given === "") throw usageError(`${name} needs a value`);
      value = given;
    } else if (!FLAG_OPTIONS.includes(name) || equals > 0) {
      throw usageError(`unknown option ${arg}`);
    }
    (options[name] ??= []).push(value);
  }
  if ((options["--config"] ?? []).length > 1) throw usageError("--config given more than once");
  return { words, options };
}

async function main(argv: string[]): Promise<void> {
  const { words, options } = parseCommandLine(argv);
  const [command, ...args] = words;
  if (options["--help"] || command === "help") {
    console.log(USAGE);
    return;
  }
  if (command === undefined) throw usageError("no command given");
  if (options["--listen"] && command !== "start") throw usageError(`--listen is only valid with "start"`);
  if (options["--json"] && command !== "apps" && command !== "ua" && command !== "devices" && command !== "users") {
    throw usageError(`--json is only valid with "apps list", "ua list", "users list" and "devices"`);
  }
  if (options["--kamailio-ctl"] && command !== "reload" && command !== "metrics")
    throw usageError(`--kamailio-ctl is only valid with "reload" and "metrics"`);
  if (options["--helper-pid-file"] && command !== "reload")
    throw usageError(`--helper-pid-file is only valid with "reload"`);
  if (options["--show-tokens"] && command !== "devices") throw usageError(`--show-tokens is only valid with "devices"`);
  if (options["--dry-run"] && command !== "import-kazoo")
    throw usageError(`--dry-run is only valid with "import-kazoo"`);
  if (options["--insecure-no-auth"] && command !== "start")
    throw usageError(`--insecure-no-auth is only valid with "start"`);
  const clusterOptions: ClusterOptions = {};
  for (const name of Object.keys(CLUSTER_OPTIONS)) {
    const values = options[name];
    if (!values) continue;
    if (command !== "start") throw usageError(`${name} is only valid with "start"`);
    if (values.length > 1) throw usageError(`${name} given more than once`);
    clusterOptions[CLUSTER_OPTIONS[name]] = values[0];
  }
  const providerOptions: { [name: string]: string } = {};
  for (const name of PROVIDER_OPTIONS) {
    const values = options[name];
    if (!values) continue;
    if (command !== "apps" && command !== "test-push")
      throw usageError(`${name} is only valid with "apps add-…" and "test-push"`);
    if (values.length > 1) throw usageError(`${name} given more than once`);
    providerOptions[name] = values[0];
  }

  const configPath = resolveConfigPath(options["--config"]?.[0]);
  const json = options["--json"] !== undefined;
  switch (command) {
    case "apps":
      return runApps(configPath, args, json, providerOptions);
    case "test-push":
      return runTestPush(configPath, args, providerOptions);
    case "devices":
      return runDevices(configPath, args, json, options["--show-tokens"] !== undefined);
    case "ua": {
      const ruleOptions: RuleOptions = {};
      for (const name of RULE_OPTIONS) {
        const values = options[name];
        if (!values) continue;
        if (values.length > 1) throw usageError(`${name} given more than once`);
        ruleOptions[name as keyof RuleOptions] = values[0];
      }
      return runUserAgents(configPath, args, json, ruleOptions);
    }
    case "users":
      return runUsers(configPath, args, json);
    case "import-kazoo":
      if (args.length !== 1) throw usageError(`expected "import-kazoo <system_config-pusher.json> [--dry-run]"`);
      return runImportKazoo(configPath, args[0], options["--dry-run"] !== undefined);
    case "reload":
      if (args.length > 0) throw usageError(`"reload" takes no arguments, got ${JSON.stringify(args[0])}`);
      return runReload(configPath, {
        kamailioCtl: options["--kamailio-ctl"]?.[0],
        helperPid: options["--helper-pid-file"]?.[0],
      });
    case "metrics":
      if (args.length > 0) throw usageError(`"metrics" takes no arguments, got ${JSON.stringify(args[0])}`);
      return runMetrics(configPath, options["--kamailio-ctl"]?.[0]);
    case "check":
      if (args.length > 0) throw usageError(`"check" takes no arguments, got ${JSON.stringify(args[0])}`);
      return runCheck(configPath);
    case "start": {
      if (args.length > 0) throw usageError(`"start" takes no arguments, got ${JSON.stringify(args[0])}`);
      const config = withClusterOptions(readConfigFile(configPath), clusterOptions);
      const listen = options["--listen"]
        ? options["--listen"].map((value) => checkListen(value, "--listen"))
        : [...config.sip.listen];
      return runStart(configPath, config, listen, {
        insecureNoAuth: options["--insecure-no-auth"] !== undefined,
        clusterOptions,
      });
    }
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}`);
  }
}

// The one error handler: our coded errors as one line, `pusher: <code>: <message>` (docs/errors.md), anything else
// (a bug) with its stack.
// The helper's senders unref their sockets and timers (a long-running helper must not be kept alive by them), so
// a command awaiting a provider's answer (test-push, check) would otherwise let Node exit, silently, with 0.
const keepAlive = setInterval(() => undefined, 60_000);
main(process.argv.slice(2))
  .finally(() => clearInterval(keepAlive))
  .catch((error: unknown) => {
    const code = (error as CliError | undefined)?.code;
    if (typeof code === "string" && code.startsWith("PUSHER_ERR")) {
      console.error(`pusher: ${code}: ${(error as Error).message}`);
      process.exitCode = code === "PUSHER_ERR_USAGE" ? 2 : 1;
    } else {
      console.error(error instanceof Error ? error.stack : error);
      process.exitCode = 1;
    }
  });
