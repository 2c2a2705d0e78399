// `pusher ua add|list|remove`: Kazoo's `User-Agents.<name>.regex` rules, kept as an ordered list where the
// first rule whose regex matches the REGISTER's User-Agent wins.
import { type UserAgentRule } from "../config";
import { CliError, loadConfig, saveConfig, usageError } from "./config-file";

type RawRule = { name?: unknown; regex?: unknown; [key: string]: unknown };

/** `ua add` options: `--app-ids a,b`, `--params appId=x,type=y,token=z` (Kazoo's properties), `--strategy s`. */
export interface RuleOptions {
  "--app-ids"?: string;
  "--params"?: string;
  "--strategy"?: string;
}

export const RULE_OPTIONS = ["--app-ids", "--params", "--strategy"];

/** The rule keys the options set; the config validation checks the values (names the key at fault). */
function ruleFields(options: RuleOptions): { [key: string]: unknown } {
  const fields: { [key: string]: unknown } = {};
  if (options["--app-ids"] !== undefined)
    fields.appIds = options["--app-ids"].split(",").filter((appId) => appId !== "");
  if (options["--params"] !== undefined) {
    const properties: { [key: string]: string } = {};
    for (const pair of options["--params"].split(",")) {
      const [key, value] = pair.split("=");
      if (!key || value === undefined)
        throw usageError(`--params expects appId=<param>,type=<param>,token=<param>, got ${JSON.stringify(pair)}`);
      properties[key] = value;
    }
    fields.properties = properties;
  }
  if (options["--strategy"] !== undefined) fields.strategy = options["--strategy"];
  return fields;
}

export function runUserAgents(configPath: string, args: string[], json: boolean, options: RuleOptions = {}): void {
  const [subcommand, ...rest] = args;
  if (json && subcommand !== "list") throw usageError(`--json is only valid with "ua list"`);
  const hasRuleOptions = RULE_OPTIONS.some((name) => options[name as keyof RuleOptions] !== undefined);
  if (hasRuleOptions && subcommand !== "add")
    throw usageError(`--app-ids, --params and --strategy are only valid with "ua add"`);
  if (subcommand === "add" && rest.length === 2) return addRule(configPath, rest[0], rest[1], ruleFields(options));
  if (subcommand === "list" && rest.length === 0) return listRules(configPath, json);
  if (subcommand === "remove" && rest.length === 1) return removeRule(configPath, rest[0]);
  throw usageError(`expected "ua add <name> <regex>", "ua list [--json]" or "ua remove <name>"`);
}

/** Appends a rule, or replaces the rule with that name where it stands (its order is kept). */
function addRule(configPath: string, name: string, regex: string, fields: { [key: string]: unknown }): void {
  const loaded = loadConfig(configPath);
  const rules = (loaded.raw.userAgents ?? []) as RawRule[];
  const index = rules.findIndex((rule) => rule.name === name);
  // Replacing keeps the rule's other keys (e.g. timers set in the file) unless an option sets them.
  if (index >= 0) rules[index] = { ...rules[index], regex, ...fields };
  else rules.push({ name, regex, ...fields });
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
  else {
    for (const rule of rules) {
      const extras: string[] = [];
      if (rule.appIds) extras.push(`apps=${rule.appIds.join(",")}`);
      if (rule.properties)
        extras.push(
          `params=${Object.entries(rule.properties)
            .map(([key, value]) => `${key}=${value}`)
            .join(",")}`,
        );
      if (rule.strategy) extras.push(`strategy=${rule.strategy}`);
      if (rule.timers)
        extras.push(
          `timers=${Object.entries(rule.timers)
            .map(([key, value]) => `${key}=${value}`)
            .join(",")}`,
        );
      console.log([rule.name, rule.regex, ...extras].join("\t"));
    }
  }
}

function removeRule(configPath: string, name: string): void {
  const loaded = loadConfig(configPath);
  const rules = (loaded.raw.userAgents ?? []) as RawRule[];
  const index = rules.findIndex((rule) => rule.name === name);
  if (index < 0)
    throw new CliError("PUSHER_ERR_NO_SUCH_RULE", `no user agent rule ${JSON.stringify(name)} in ${loaded.path}`);
  rules.splice(index, 1);
  saveConfig(loaded.path, loaded.raw);
  console.log(`user agent rule ${name} removed from ${loaded.path}`);
}
