// The `pusher` command: parses the command line by hand, dispatches, and owns the one error handler.
import { checkListen } from "../config";
import { runApps } from "./apps-command";
import { CliError, loadConfig, resolveConfigPath, usageError } from "./config-file";
import { runStart } from "./start";
import { runUserAgents } from "./ua-command";

const USAGE = `Usage: pusher [--config FILE] <command> [arguments]

Commands:
  apps add-apple <app-id> <cert.pem> [host]
                          add or replace an APNs app; the PEM holds the certificate and its unencrypted
                          private key and is copied to credentials/ next to the config; host defaults to
                          api.push.apple.com (sandbox: api.development.push.apple.com), host:port allowed
  apps list [--json]      list apps with provider and host
  apps remove <app-id>    remove an app and the certificate copy add-apple made
  ua add <name> <regex>   add a User-Agent rule at the end, or replace the regex of the rule with that name
  ua list [--json]        list User-Agent rules in order (the first match wins)
  ua remove <name>        remove a User-Agent rule
  start [--listen proto:ip:port]...
                          run pusher; the default listen addresses are sip.listen from the config
  help                    show this text

Options:
  --config FILE           the config file (default: $PUSHER_CONFIG, else ./pusher.json)
  --                      end of options: what follows are arguments (e.g. a regex starting with -)

Exit codes: 0 success, 1 runtime or configuration error, 2 usage error.`;

const VALUE_OPTIONS = ["--config", "--listen"];
const FLAG_OPTIONS = ["--json", "--help"];

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
  if (options["--json"] && command !== "apps" && command !== "ua") throw usageError(`--json is only valid with "apps list" and "ua list"`);

  const configPath = resolveConfigPath(options["--config"]?.[0]);
  const json = options["--json"] !== undefined;
  switch (command) {
    case "apps":
      return runApps(configPath, args, json);
    case "ua":
      return runUserAgents(configPath, args, json);
    case "start": {
      if (args.length > 0) throw usageError(`"start" takes no arguments, got ${JSON.stringify(args[0])}`);
      const { config } = loadConfig(configPath);
      const listen = options["--listen"] ? options["--listen"].map((value) => checkListen(value, "--listen")) : [...config.sip.listen];
      return runStart(configPath, config, listen);
    }
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}`);
  }
}

// The one error handler: our coded errors as one line, anything else (a bug) with its stack.
main(process.argv.slice(2)).catch((error: unknown) => {
  const code = (error as CliError | undefined)?.code;
  if (typeof code === "string" && code.startsWith("PUSHER_ERR")) {
    console.error(`pusher: ${(error as Error).message}`);
    process.exitCode = code === "PUSHER_ERR_USAGE" ? 2 : 1;
  } else {
    console.error(error instanceof Error ? error.stack : error);
    process.exitCode = 1;
  }
});
