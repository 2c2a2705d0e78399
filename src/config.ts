// The one configuration file (pusher.json): defaults, validation, and the frozen result.
// Pure and ES5-safe: the CLI and the helper validate with it, and the plugin (Duktape) reads the same file
// through it, so both sides agree on every default.

export interface AppleCredentials {
  /** Unencrypted PEM holding the APNs certificate and its private key (Kazoo's add_apple_app). */
  certificateFile: string;
  /** `host` or `host:port`; the sandbox is `api.development.push.apple.com` (or `api.sandbox.push.apple.com`). */
  host: string;
}

export interface AppConfig {
  apple?: AppleCredentials;
}

export interface UserAgentRule {
  name: string;
  /** JavaScript regular expression tested against the REGISTER's User-Agent. */
  regex: string;
}

/** How a call reaches a callee with push devices: see the README's "Call strategies". */
export type CallStrategy = "invite-first" | "push-first";
export const CALL_STRATEGIES: CallStrategy[] = ["invite-first", "push-first"];

/** The provisional reply the caller gets while the phones are pushed ("none" sends nothing). */
export type PushProvisional = "none" | "110" | "180" | "182";
export const PUSH_PROVISIONALS: PushProvisional[] = ["none", "110", "180", "182"];

export interface CallsConfig {
  strategy: CallStrategy;
  provisional: PushProvisional;
  /** Alert push "missed call" to every pushed phone when the caller gives up. */
  missedCallPush: boolean;
  /** Alert push "answered elsewhere" to every pushed phone that did not answer. */
  answeredElsewherePush: boolean;
}

export interface PusherConfig {
  sip: { listen: string[]; auth: boolean };
  calls: CallsConfig;
  timers: { inviteFirstMs: number; pushWaitMs: number; afterWakeMs: number };
  userAgents: UserAgentRule[];
  apps: { [appId: string]: AppConfig };
  link: { port: number };
  stateDir: string;
  log: { level: LogLevel };
}

export type LogLevel = "error" | "warn" | "info" | "debug";

export const DEFAULT_APPLE_HOST = "api.push.apple.com";

export function defaultConfig(): PusherConfig {
  return {
    sip: { listen: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"], auth: false },
    // Kazoo pusher-role's t1/t2/t3.
    timers: { inviteFirstMs: 2000, pushWaitMs: 20000, afterWakeMs: 30000 },
    // Kazoo's behaviour and reply: invite-first with "182 sending push notification".
    calls: { strategy: "invite-first", provisional: "182", missedCallPush: true, answeredElsewherePush: true },
    userAgents: [],
    apps: {},
    link: { port: 8448 },
    stateDir: "pusher-state",
    log: { level: "info" },
  };
}

/** A configuration error names the key at fault: `timers.pushWaitMs: must be an integer from 100 to 600000`. */
export class ConfigError extends Error {
  readonly code = "PUSHER_ERR_CONFIG";
  constructor(readonly key: string, problem: string) {
    super(key + ": " + problem);
    this.name = "ConfigError";
  }
}

type Json = { [key: string]: unknown };

function isObject(value: unknown): value is Json {
  return !!value && typeof value === "object" && !(value instanceof Array);
}

function checkKeys(value: Json, allowed: string[], path: string): void {
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    if (allowed.indexOf(key) < 0) throw new ConfigError(path ? path + "." + key : key, "unknown key");
  }
}

function objectAt(value: unknown, path: string): Json {
  if (!isObject(value)) throw new ConfigError(path, "must be an object");
  return value;
}

function integerAt(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== "number" || Math.floor(value) !== value || value < min || value > max) {
    throw new ConfigError(path, "must be an integer from " + min + " to " + max);
  }
  return value;
}

function stringAt(value: unknown, path: string): string {
  if (typeof value !== "string" || value.length === 0) throw new ConfigError(path, "must be a non-empty string");
  return value;
}

const LISTEN_PATTERN = /^(udp|tcp|tls):(\[[0-9a-fA-F:.]+\]|[0-9A-Za-z.-]+):([0-9]{1,5})$/;

export function checkListen(value: string, path: string): string {
  const match = LISTEN_PATTERN.exec(value);
  if (!match || Number(match[3]) < 1 || Number(match[3]) > 65535) {
    throw new ConfigError(path, "must look like proto:ip:port (udp, tcp or tls), got " + JSON.stringify(value));
  }
  return value;
}

export function checkRegex(value: string, path: string): string {
  try {
    new RegExp(value);
  } catch (e) {
    throw new ConfigError(path, "is not a valid regular expression: " + (e as Error).message);
  }
  return value;
}

const HOST_PATTERN = /^[0-9A-Za-z.-]+(:[0-9]{1,5})?$/;

export function checkHost(value: string, path: string): string {
  if (!HOST_PATTERN.test(value)) throw new ConfigError(path, "must be host or host:port, got " + JSON.stringify(value));
  return value;
}

function validateApps(value: unknown): { [appId: string]: AppConfig } {
  const apps = objectAt(value, "apps");
  const result: { [appId: string]: AppConfig } = {};
  for (const appId in apps) {
    if (!Object.prototype.hasOwnProperty.call(apps, appId)) continue;
    const path = "apps." + appId;
    const app = objectAt(apps[appId], path);
    checkKeys(app, ["apple"], path);
    const config: AppConfig = {};
    if (app.apple !== undefined) {
      const apple = objectAt(app.apple, path + ".apple");
      checkKeys(apple, ["certificateFile", "host"], path + ".apple");
      config.apple = {
        certificateFile: stringAt(apple.certificateFile, path + ".apple.certificateFile"),
        host: apple.host === undefined ? DEFAULT_APPLE_HOST : checkHost(stringAt(apple.host, path + ".apple.host"), path + ".apple.host"),
      };
    }
    result[appId] = config;
  }
  return result;
}

function booleanAt(value: unknown, path: string): boolean {
  if (typeof value !== "boolean") throw new ConfigError(path, "must be true or false");
  return value;
}

function oneOf<T extends string>(value: unknown, path: string, allowed: T[]): T {
  if (typeof value !== "string" || allowed.indexOf(value as T) < 0) {
    throw new ConfigError(path, "must be one of " + allowed.join(", "));
  }
  return value as T;
}

function validateCalls(value: unknown): CallsConfig {
  const calls = objectAt(value, "calls");
  checkKeys(calls, ["strategy", "provisional", "missedCallPush", "answeredElsewherePush"], "calls");
  const result = defaultConfig().calls;
  if (calls.strategy !== undefined) result.strategy = oneOf(calls.strategy, "calls.strategy", CALL_STRATEGIES);
  if (calls.provisional !== undefined) result.provisional = oneOf(calls.provisional, "calls.provisional", PUSH_PROVISIONALS);
  if (calls.missedCallPush !== undefined) result.missedCallPush = booleanAt(calls.missedCallPush, "calls.missedCallPush");
  if (calls.answeredElsewherePush !== undefined) result.answeredElsewherePush = booleanAt(calls.answeredElsewherePush, "calls.answeredElsewherePush");
  return result;
}

function validateUserAgents(value: unknown): UserAgentRule[] {
  if (!(value instanceof Array)) throw new ConfigError("userAgents", "must be a list of {name, regex}");
  const names: string[] = [];
  return value.map(function (entry: unknown, index: number): UserAgentRule {
    const path = "userAgents[" + index + "]";
    const rule = objectAt(entry, path);
    checkKeys(rule, ["name", "regex"], path);
    const name = stringAt(rule.name, path + ".name");
    if (names.indexOf(name) >= 0) throw new ConfigError(path + ".name", "duplicate rule name " + JSON.stringify(name));
    names.push(name);
    return { name: name, regex: checkRegex(stringAt(rule.regex, path + ".regex"), path + ".regex") };
  });
}

/**
 * Checks a parsed pusher.json and fills in defaults. Unknown keys are refused, naming the key.
 * Throws ConfigError; returns a deeply frozen config.
 */
export function validateConfig(input: unknown): PusherConfig {
  const config = defaultConfig();
  const root = objectAt(input === undefined ? {} : input, "(root)");
  checkKeys(root, ["sip", "timers", "calls", "userAgents", "apps", "link", "stateDir", "log"], "");

  if (root.sip !== undefined) {
    const sip = objectAt(root.sip, "sip");
    checkKeys(sip, ["listen", "auth"], "sip");
    if (sip.listen !== undefined) {
      if (!(sip.listen instanceof Array) || sip.listen.length === 0) throw new ConfigError("sip.listen", "must be a non-empty list");
      config.sip.listen = sip.listen.map(function (entry: unknown, index: number) {
        return checkListen(stringAt(entry, "sip.listen[" + index + "]"), "sip.listen[" + index + "]");
      });
    }
    if (sip.auth !== undefined) {
      if (typeof sip.auth !== "boolean") throw new ConfigError("sip.auth", "must be true or false");
      config.sip.auth = sip.auth;
    }
  }
  if (root.timers !== undefined) {
    const timers = objectAt(root.timers, "timers");
    checkKeys(timers, ["inviteFirstMs", "pushWaitMs", "afterWakeMs"], "timers");
    if (timers.inviteFirstMs !== undefined) config.timers.inviteFirstMs = integerAt(timers.inviteFirstMs, "timers.inviteFirstMs", 100, 60000);
    if (timers.pushWaitMs !== undefined) config.timers.pushWaitMs = integerAt(timers.pushWaitMs, "timers.pushWaitMs", 1000, 600000);
    if (timers.afterWakeMs !== undefined) config.timers.afterWakeMs = integerAt(timers.afterWakeMs, "timers.afterWakeMs", 1000, 600000);
  }
  if (root.calls !== undefined) config.calls = validateCalls(root.calls);
  if (root.userAgents !== undefined) config.userAgents = validateUserAgents(root.userAgents);
  if (root.apps !== undefined) config.apps = validateApps(root.apps);
  if (root.link !== undefined) {
    const link = objectAt(root.link, "link");
    checkKeys(link, ["port"], "link");
    if (link.port !== undefined) config.link.port = integerAt(link.port, "link.port", 1, 65535);
  }
  if (root.stateDir !== undefined) config.stateDir = stringAt(root.stateDir, "stateDir");
  if (root.log !== undefined) {
    const log = objectAt(root.log, "log");
    checkKeys(log, ["level"], "log");
    if (log.level !== undefined) {
      if (["error", "warn", "info", "debug"].indexOf(log.level as string) < 0) {
        throw new ConfigError("log.level", "must be one of error, warn, info, debug");
      }
      config.log.level = log.level as LogLevel;
    }
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    Object.freeze(value);
    for (const key in value) {
      if (Object.prototype.hasOwnProperty.call(value, key)) deepFreeze((value as Json)[key]);
    }
  }
  return value;
}
