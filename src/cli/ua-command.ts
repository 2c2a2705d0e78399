// `pusher ua add|list|remove`: Kazoo's `User-Agents.<name>.regex` rules, kept as an ordered list where the
// first rule whose regex matches the REGISTER's User-Agent wins.
import { type UserAgentRule } from "../config";
import { CliError, loadConfig, saveConfig, usageError } from "./config-file";

type RawRule = { name?: unknown; regex?: unknown };

export function runUserAgents(configPath: string, args: string[], json: boolean): void {
  const [subcommand, ...rest] = args;
  if (json && subcommand !== "list") throw usageError(`--json is only valid with "ua list"`);
  if (subcommand === "add" && rest.length === 2) return addRule(configPath, rest[0], rest[1]);
  if (subcommand === "list" && rest.length === 0) return listRules(configPath, json);
  if (subcommand === "remove" && rest.length === 1) return removeRule(configPath, rest[0]);
  throw usageError(`expected "ua add <name> <regex>", "ua list [--json]" or "ua remove <name>"`);
}

/** Appends a rule, or replaces the regex of the rule with that name where it stands (its order is kept). */
function addRule(configPath: string, name: string, regex: string): void {
  const loaded = loadConfig(configPath);
  const rules = (loaded.raw.userAgents ?? []) as RawRule[];
  const index = rules.findIndex((rule) => rule.name === name);
  if (index >= 0) rules[index].regex = regex;
  else rules.push({ name, regex });
  loaded.raw.userAgents = rules;
  saveConfig(loaded.path, loaded.raw); // validates the regex: "userAgents[2].regex: is not a valid regular expression"
  const position = index >= 0 ? index + 1 : rules.length;
  console.log(`user agent rule ${name} ${index >= 0 ? "replaced" : "added"} at position ${position} in ${loaded.path}`);
}

function listRules(configPath: string, json: boolean): void {
  const { path, config } = loadConfig(configPath);
  const rules: readonly UserAgentRule[] = config.userAgents;
  if (json) console.log(JSON.stringify(rules, null, 2));
  else if (rules.length === 0) console.log(`no user agent rules in ${path}`);
  else for (const rule of rules) console.log(`${rule.name}\t${rule.regex}`);
}

function removeRule(configPath: string, name: string): void {
  const loaded = loadConfig(configPath);
  const rules = (loaded.raw.userAgents ?? []) as RawRule[];
  const index = rules.findIndex((rule) => rule.name === name);
  if (index < 0) throw new CliError("PUSHER_ERR_NO_SUCH_RULE", `no user agent rule ${JSON.stringify(name)} in ${loaded.path}`);
  rules.splice(index, 1);
  saveConfig(loaded.path, loaded.raw);
  console.log(`user agent rule ${name} removed from ${loaded.path}`);
}
