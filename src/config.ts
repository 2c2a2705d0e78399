// The one configuration file (pusher.json): defaults, validation, and the frozen result.
// Pure and ES5-safe: the CLI and the helper validate with it, and the plugin (Duktape) reads the same file
// through it, so both sides agree on every default.

import { DEFAULT_WEBPUSH_ENDPOINT_HOSTS, isEndpointHostPattern } from "./webpush-endpoint";
import { isValidCidr } from "./ip-match";

/** APNs credentials: a certificate (`certificateFile`), or a token-auth signing key (`keyFile` + `keyId` + `teamId`). */
export interface AppleCredentials {
  /** Unencrypted PEM holding the APNs certificate and its private key (Kazoo's add_apple_app). */
  certificateFile?: string;
  /** Token auth: Apple's AuthKey_<KEYID>.p8 (PKCS#8 EC P-256 private key). */
  keyFile?: string;
  /** Token auth: the 10-character Key ID of keyFile. */
  keyId?: string;
  /** Token auth: the 10-character Team ID of the developer account. */
  teamId?: string;
  /** `host` or `host:port` of production APNs, where every token not marked sandbox goes. */
  host: string;
  /** `host` or `host:port` of the APNs sandbox, for tokens of development builds (RFC 8599 `pn-provider=apns.dev`). */
  sandboxHost: string;
  /** A call-ended notice to a device with only a PushKit token goes as a VoIP push (the app must report it to
   * CallKit and end it at once); false: such a device gets no call-ended push. */
  callEndedVoipPush: boolean;
}

/** FCM HTTP v1 credentials. */
export interface FirebaseCredentials {
  /** The service account JSON Google gives (`type: service_account`, project_id, private_key, token_uri…). */
  serviceAccountFile: string;
  /** `host` or `host:port` of the FCM API. */
  host: string;
  /** Firebase project ids a binding may name (RFC 8599 pn-param); `pusher apps add-firebase` writes the service
   * account's own. Absent (configs written before): the plugin cannot check them, the helper pushes only to the
   * service account's own project. */
  projectIds?: string[];
}

/** Web Push (VAPID, RFC 8292) credentials. */
export interface WebPushCredentials {
  /** PEM holding the VAPID P-256 private key. */
  vapidKeyFile: string;
  /** VAPID `sub`: a `mailto:` or `https:` contact for the push service's operator. */
  subject: string;
  /** The key's public half, base64url uncompressed point: what REGISTER 2xx advertises as `+sip.vapid`. */
  publicKey?: string;
  /** Hosts subscriptions may point at (src/webpush-endpoint.ts); always set once validated. */
  endpointHosts?: string[];
}

export interface AppConfig {
  /** Kazoo's per-app switch: a disabled app keeps its credentials but gets no pushes. Always set once validated. */
  enabled?: boolean;
  apple?: AppleCredentials;
  firebase?: FirebaseCredentials;
  webpush?: WebPushCredentials;
}

/** Contact params a legacy (Kazoo-style) binding is read from: Kazoo's Token-App, Token-Type and Token-ID. */
export interface PushParamNames {
  appId: string;
  type: string;
  token: string;
}

/** Kazoo's documented defaults, also Linphone's legacy names. */
export const DEFAULT_PUSH_PARAM_NAMES: PushParamNames = { appId: "app-id", type: "pn-type", token: "pn-tok" };

export interface TimersConfig {
  inviteFirstMs: number;
  pushWaitMs: number;
  afterWakeMs: number;
}

export interface UserAgentRule {
  name: string;
  /** JavaScript regular expression tested against the REGISTER's User-Agent. */
  regex: string;
  /** Only bindings for these app ids are stored from phones this rule matches (absent: any app id). */
  appIds?: string[];
  /** Which Contact params carry the app id, push type and token (Kazoo's `properties`); unset names keep the defaults. */
  properties?: Partial<PushParamNames>;
  /** Call strategy for devices stored through this rule, instead of calls.strategy. */
  strategy?: CallStrategy;
  /** Timers for devices stored through this rule, each instead of the global one. */
  timers?: Partial<TimersConfig>;
}

export interface DevicesConfig {
  /** A device record outlives its SIP binding this long after its last REGISTER. */
  retentionDays: number;
  /** Device records one AOR may hold; a new device beyond it replaces the one whose last REGISTER is oldest. */
  maxPerAor: number;
}

/** How a call reaches a callee with push devices: see docs/calls-and-pushes.md, "Strategies and cases". */
export type CallStrategy = "invite-first" | "parallel" | "push-first";
export const CALL_STRATEGIES: CallStrategy[] = ["invite-first", "parallel", "push-first"];

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
  /** Lifetime of the one-time registration token a push carries (Kazoo's X-Token-Reg; 60 s there). */
  registrationTokenSeconds: number;
  /** Calls held (pushed, waiting or ringing) for one AOR at once; one more is answered 486 Busy Here. */
  maxHeldPerAor: number;
  /** Calls that push one AOR's phones per minute (each pushes every device once); one more gets 480, no push. */
  maxPushesPerAorPerMinute: number;
  /** Sources (CIDRs) whose Remote-Party-ID / P-Asserted-Identity / P-Preferred-Identity name the caller in a push
   * (kazoo.trustedSources count too); from anywhere else the push names the From. */
  trustedSources: string[];
}

/** Kamailio-side settings `pusher start` passes on the command line. */
export interface KamailioConfig {
  /** `#!define`s for kamailio/pusher.cfg knobs (PUSHER_* only), e.g. {"PUSHER_TOKEN_SKIPS_AUTH": 1}. */
  defines: { [name: string]: string | number };
  /** Kamailio's shared memory (`-m`), in MB: usrloc, htable and tm live there (about 1 KiB per push device). */
  sharedMemoryMb: number;
}

export interface KazooConfig {
  /** Sources (CIDRs) whose X-KAZOO-PUSHER-* headers are obeyed; from anywhere else they are stripped. */
  trustedSources: string[];
}

/** MESSAGEs stored for sleeping phones (docs/messages.md). */
export interface MessagesConfig {
  /** A stored MESSAGE not delivered this long after it arrived is dropped (and counted). */
  retentionDays: number;
  /** MESSAGEs stored for one AOR at once; one more is refused (480) instead of stored. */
  maxPerAor: number;
  /** Largest body stored from a MESSAGE that came over TCP or TLS (over UDP: RFC 3428 §7's 1300-byte request). */
  maxBodyBytes: number;
  /** The message push carries the first 100 characters of a text/plain body. */
  previewInPush: boolean;
}

/** Refresh pushes before a binding expires (RFC 8599 §5.5, docs/refresh-pushes.md). */
export interface RegistrationsConfig {
  /** A binding whose phone can take a background push is pushed this long before it expires. */
  refreshBeforeSeconds: number;
}

/**
 * One node of a cluster (docs/configuration.md, `cluster.*`): Kamailio's DMQ replicates bindings and records between
 * the nodes, and the device records live in one PostgreSQL database every node reaches.
 */
export interface ClusterConfig {
  /** This node's number, 1 to `nodes`; 0: not clustered (the default). */
  nodeId: number;
  /** How many nodes the cluster has (pusher.cfg looks at node ids 1 to nodes). */
  nodes: number;
  /** `ip:port` where this node's DMQ listens (udp); set when clustered. */
  dmqListen?: string;
  /** The other nodes' DMQ `host:port`; the first three are this node's DMQ notification addresses. */
  peers: string[];
  /** `postgres://user:password@host:port/db` of the device records every node shares; set when clustered. */
  database?: string;
}

export interface PusherConfig {
  sip: { listen: string[]; auth: boolean; tls?: SipTlsConfig };
  cluster: ClusterConfig;
  calls: CallsConfig;
  kazoo: KazooConfig;
  kamailio: KamailioConfig;
  timers: TimersConfig;
  userAgents: UserAgentRule[];
  devices: DevicesConfig;
  messages: MessagesConfig;
  registrations: RegistrationsConfig;
  apps: { [appId: string]: AppConfig };
  link: { port: number };
  /** The helper's Prometheus endpoint: http://127.0.0.1:<port>/metrics (0: off). */
  metrics: { port: number };
  stateDir: string;
  log: { level: LogLevel };
}

/** The certificate and key Kamailio's tls module serves on `tls:` listen addresses (`pusher start` writes tls.cfg). */
export interface SipTlsConfig {
  certificateFile: string;
  keyFile: string;
}

export type LogLevel = "error" | "warn" | "info" | "debug";

export const DEFAULT_APPLE_HOST = "api.push.apple.com";
// Apple's development server (sending-notification-requests-to-apns).
export const DEFAULT_APPLE_SANDBOX_HOST = "api.sandbox.push.apple.com";
export const DEFAULT_FIREBASE_HOST = "fcm.googleapis.com";

export function defaultConfig(): PusherConfig {
  return {
    // Push records are only written from authenticated REGISTERs; labs may turn auth off.
    sip: { listen: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"], auth: true },
    // One node: sqlite beside Kamailio, no DMQ.
    cluster: { nodeId: 0, nodes: 1, peers: [] },
    // Kazoo pusher-role's t1/t2/t3.
    timers: { inviteFirstMs: 2000, pushWaitMs: 20000, afterWakeMs: 30000 },
    // Kazoo's behaviour and reply: invite-first with "182 sending push notification".
    // Per-AOR limits: a loop of INVITEs must neither ring a phone forever nor get its VoIP pushes throttled by APNs.
    calls: {
      strategy: "invite-first",
      provisional: "182",
      missedCallPush: true,
      answeredElsewherePush: true,
      registrationTokenSeconds: 60,
      maxHeldPerAor: 5,
      maxPushesPerAorPerMinute: 10,
      trustedSources: ["127.0.0.1/32", "::1/128"],
    },
    // Kamailio's own default is 64 MB, too small for 100 k phones (bench: ~1 KiB of shm per push device plus
    // usrloc's binding); 256 MB holds a few hundred thousand.
    kamailio: { defines: {}, sharedMemoryMb: 256 },
    kazoo: { trustedSources: ["127.0.0.1/32", "::1/128"] },
    userAgents: [],
    // RFC 8599 leaves it to the proxy; Flexisip's wiki recommends 7 days, Kazoo keeps tokens for good.
    // A subscriber's phones, tablets and desktop apps fit; a client inventing instance ids cannot grow memory.
    devices: { retentionDays: 30, maxPerAor: 10 },
    // Flexisip keeps messages 7 days. 1300 bytes: RFC 3428 §7's MESSAGE size without congestion control; larger
    // bodies come over TCP or TLS, up to what uac's $uac_req(body) carries (32 KiB) with room for the headers.
    messages: { retentionDays: 7, maxPerAor: 100, maxBodyBytes: 16384, previewInPush: false },
    // OpenSIPS's pn_trigger_interval.
    registrations: { refreshBeforeSeconds: 120 },
    apps: {},
    link: { port: 8448 },
    // Next to node_exporter's 9100 range, unassigned by IANA.
    metrics: { port: 9648 },
    stateDir: "pusher-state",
    log: { level: "info" },
  };
}

/** A configuration error names the key at fault: `timers.pushWaitMs: must be an integer from 100 to 600000`. */
export class ConfigError extends Error {
  readonly code = "PUSHER_ERR_CONFIG";
  constructor(
    readonly key: string,
    problem: string,
  ) {
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

// Duktape 2.7 (the plugin's engine) has ES5 regular expressions: no lookbehind, named groups or \p{…}.
const NOT_IN_DUKTAPE = /\(\?<|\\k<|\\[pP]\{/;

export function checkRegex(value: string, path: string): string {
  try {
    new RegExp(value);
  } catch (e) {
    throw new ConfigError(path, "is not a valid regular expression: " + (e as Error).message);
  }
  if (NOT_IN_DUKTAPE.test(value)) {
    throw new ConfigError(
      path,
      "uses lookbehind, a named group or \\p{…}, which Kamailio's JavaScript engine (ES5) lacks",
    );
  }
  return value;
}

// host, or host:port with a port from 1 to 65535 (checked after the match).
const HOST_PATTERN = /^[0-9A-Za-z.-]+(:[0-9]{1,5})?$/;

export function checkHost(value: string, path: string): string {
  const match = HOST_PATTERN.exec(value);
  if (
    !match ||
    (match[1] !== undefined && (Number(match[1].substring(1)) < 1 || Number(match[1].substring(1)) > 65535))
  ) {
    throw new ConfigError(path, "must be host or host:port, got " + JSON.stringify(value));
  }
  return value;
}

// Apple's Key ID and Team ID are 10 upper-case letters and digits.
const APPLE_ID_PATTERN = /^[A-Z0-9]{10}$/;

function validateApple(value: unknown, path: string): AppleCredentials {
  const apple = objectAt(value, path);
  checkKeys(apple, ["certificateFile", "keyFile", "keyId", "teamId", "host", "sandboxHost", "callEndedVoipPush"], path);
  const host =
    apple.host === undefined ? DEFAULT_APPLE_HOST : checkHost(stringAt(apple.host, path + ".host"), path + ".host");
  const sandboxHost =
    apple.sandboxHost === undefined
      ? DEFAULT_APPLE_SANDBOX_HOST
      : checkHost(stringAt(apple.sandboxHost, path + ".sandboxHost"), path + ".sandboxHost");
  const callEndedVoipPush =
    apple.callEndedVoipPush === undefined ? false : booleanAt(apple.callEndedVoipPush, path + ".callEndedVoipPush");
  const tokenAuth = apple.keyFile !== undefined || apple.keyId !== undefined || apple.teamId !== undefined;
  if (tokenAuth && apple.certificateFile !== undefined) {
    throw new ConfigError(
      path + ".certificateFile",
      "cannot be combined with keyFile/keyId/teamId: use a certificate or token auth",
    );
  }
  const common = { host: host, sandboxHost: sandboxHost, callEndedVoipPush: callEndedVoipPush };
  if (!tokenAuth)
    return Object.assign({ certificateFile: stringAt(apple.certificateFile, path + ".certificateFile") }, common);
  const ids: { [key: string]: string } = {};
  const names = ["keyId", "teamId"];
  for (let i = 0; i < names.length; i++) {
    const id = stringAt(apple[names[i]], path + "." + names[i]);
    if (!APPLE_ID_PATTERN.test(id))
      throw new ConfigError(
        path + "." + names[i],
        "must be 10 upper-case letters and digits, got " + JSON.stringify(id),
      );
    ids[names[i]] = id;
  }
  return Object.assign(
    { keyFile: stringAt(apple.keyFile, path + ".keyFile"), keyId: ids.keyId, teamId: ids.teamId },
    common,
  );
}

function validateApps(value: unknown): { [appId: string]: AppConfig } {
  const apps = objectAt(value, "apps");
  const result: { [appId: string]: AppConfig } = {};
  for (const appId in apps) {
    if (!Object.prototype.hasOwnProperty.call(apps, appId)) continue;
    const path = "apps." + appId;
    if (appId === "__proto__") throw new ConfigError(path, "is not a usable app id");
    const app = objectAt(apps[appId], path);
    checkKeys(app, ["enabled", "apple", "firebase", "webpush"], path);
    const config: AppConfig = { enabled: app.enabled === undefined ? true : booleanAt(app.enabled, path + ".enabled") };
    if (app.apple !== undefined) config.apple = validateApple(app.apple, path + ".apple");
    if (app.firebase !== undefined) {
      const firebase = objectAt(app.firebase, path + ".firebase");
      checkKeys(firebase, ["serviceAccountFile", "host", "projectIds"], path + ".firebase");
      config.firebase = {
        serviceAccountFile: stringAt(firebase.serviceAccountFile, path + ".firebase.serviceAccountFile"),
        host:
          firebase.host === undefined
            ? DEFAULT_FIREBASE_HOST
            : checkHost(stringAt(firebase.host, path + ".firebase.host"), path + ".firebase.host"),
      };
      if (firebase.projectIds !== undefined)
        config.firebase.projectIds = projectIdsAt(firebase.projectIds, path + ".firebase.projectIds");
    }
    if (app.webpush !== undefined) {
      const webpush = objectAt(app.webpush, path + ".webpush");
      checkKeys(webpush, ["vapidKeyFile", "subject", "publicKey", "endpointHosts"], path + ".webpush");
      const subject = stringAt(webpush.subject, path + ".webpush.subject");
      // RFC 8292 §2.1: the contact SHOULD be a mailto: or https: URI.
      if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/.test(subject)) {
        throw new ConfigError(
          path + ".webpush.subject",
          "must be a mailto: or https: URI, got " + JSON.stringify(subject),
        );
      }
      config.webpush = {
        vapidKeyFile: stringAt(webpush.vapidKeyFile, path + ".webpush.vapidKeyFile"),
        subject: subject,
      };
      if (webpush.publicKey !== undefined) {
        const publicKey = stringAt(webpush.publicKey, path + ".webpush.publicKey");
        if (!/^[A-Za-z0-9_-]{86,88}$/.test(publicKey))
          throw new ConfigError(
            path + ".webpush.publicKey",
            "must be the base64url uncompressed P-256 public key (87 characters)",
          );
        config.webpush.publicKey = publicKey;
      }
      config.webpush.endpointHosts = DEFAULT_WEBPUSH_ENDPOINT_HOSTS.slice();
      if (webpush.endpointHosts !== undefined) {
        const where = path + ".webpush.endpointHosts";
        if (!Array.isArray(webpush.endpointHosts) || !webpush.endpointHosts.length)
          throw new ConfigError(where, "must be a non-empty list of host names");
        config.webpush.endpointHosts = webpush.endpointHosts.map(function (host: unknown, i: number) {
          const pattern = stringAt(host, where + "[" + i + "]").toLowerCase();
          if (!isEndpointHostPattern(pattern))
            throw new ConfigError(
              where + "[" + i + "]",
              "must be a host name, an IP address or *.<domain>, with :<port> for a port other than 443, got " +
                JSON.stringify(host),
            );
          return pattern;
        });
      }
    }
    result[appId] = config;
  }
  return result;
}

// Google's rule for project ids (6–30 lower-case letters, digits and hyphens, a letter first), with the older
// domain-scoped form (`example.com:project`). https://cloud.google.com/resource-manager/docs/creating-managing-projects
const FIREBASE_PROJECT_ID = /^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

function projectIdsAt(value: unknown, path: string): string[] {
  if (!(value instanceof Array) || !value.length)
    throw new ConfigError(path, "must be a non-empty list of Firebase project ids");
  return value.map(function (entry: unknown, i: number) {
    const id = stringAt(entry, path + "[" + i + "]");
    if (!FIREBASE_PROJECT_ID.test(id))
      throw new ConfigError(
        path + "[" + i + "]",
        "must be a Firebase project id (6-30 lower-case letters, digits, -), got " + JSON.stringify(id),
      );
    return id;
  });
}

function cidrListAt(value: unknown, path: string): string[] {
  if (!(value instanceof Array)) throw new ConfigError(path, "must be a list of CIDRs");
  return value.map(function (entry: unknown, index: number) {
    const cidr = stringAt(entry, path + "[" + index + "]");
    if (!isValidCidr(cidr))
      throw new ConfigError(
        path + "[" + index + "]",
        "must be an IPv4 or IPv6 address or CIDR, got " + JSON.stringify(cidr),
      );
    return cidr;
  });
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

const DEFINE_NAME = /^PUSHER_[A-Z0-9_]+$/;
// Commas for lists (PUSHER_TRUSTED_SOURCES: CIDRs).
const DEFINE_VALUE = /^[A-Za-z0-9 ._:\/@=+,-]*$/;

function validateKamailio(value: unknown): KamailioConfig {
  const kamailio = objectAt(value, "kamailio");
  checkKeys(kamailio, ["defines", "sharedMemoryMb"], "kamailio");
  const result: KamailioConfig = { defines: {}, sharedMemoryMb: defaultConfig().kamailio.sharedMemoryMb };
  if (kamailio.sharedMemoryMb !== undefined)
    result.sharedMemoryMb = integerAt(kamailio.sharedMemoryMb, "kamailio.sharedMemoryMb", 64, 65536);
  if (kamailio.defines === undefined) return result;
  const defines = objectAt(kamailio.defines, "kamailio.defines");
  for (const name in defines) {
    if (!Object.prototype.hasOwnProperty.call(defines, name)) continue;
    const path = "kamailio.defines." + name;
    if (!DEFINE_NAME.test(name))
      throw new ConfigError(path, "only PUSHER_* knobs of kamailio/pusher.cfg can be set here");
    const define = defines[name];
    if (typeof define === "number" && Math.floor(define) === define) result.defines[name] = define;
    // Strings become quoted cfg strings; quotes and backslashes could break out of them, so they are refused.
    else if (typeof define === "string" && DEFINE_VALUE.test(define)) result.defines[name] = define;
    else throw new ConfigError(path, "must be an integer or a string of letters, digits and . _ : / @ = + , - space");
  }
  return result;
}

/** Node ids and counts: pusher.cfg looks at every node id of the cluster for each REGISTER, so they stay few. */
export const MAX_CLUSTER_NODES = 32;
// DMQ's own address: an IPv4 address and a port (kamailio.cfg compares it with the socket a KDMQ came in on).
const DMQ_LISTEN_PATTERN =
  /^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9]):([0-9]{1,5})$/;
// Another node's DMQ address: a host name or IPv4 address, and a port.
const DMQ_PEER_PATTERN = /^[0-9A-Za-z.-]+:([0-9]{1,5})$/;
// db_postgres's URL (postgres://[user[:password]@]host[:port]/database). No quote, backslash or space: it goes to
// Kamailio as a quoted cfg string.
const POSTGRES_URL_PATTERN = /^postgres:\/\/([^\s"'\\/@]+@)?[0-9A-Za-z.-]+(:[0-9]{1,5})?\/[^\s"'\\/@]+$/;

function portIn(match: RegExpExecArray, group: number): boolean {
  const port = Number(match[group]);
  return port >= 1 && port <= 65535;
}

function validateCluster(value: unknown): ClusterConfig {
  const cluster = objectAt(value, "cluster");
  checkKeys(cluster, ["nodeId", "nodes", "dmqListen", "peers", "database"], "cluster");
  const result = defaultConfig().cluster;
  if (cluster.nodeId !== undefined) result.nodeId = integerAt(cluster.nodeId, "cluster.nodeId", 0, MAX_CLUSTER_NODES);
  if (cluster.nodes !== undefined) result.nodes = integerAt(cluster.nodes, "cluster.nodes", 1, MAX_CLUSTER_NODES);
  if (cluster.dmqListen !== undefined) {
    const listen = stringAt(cluster.dmqListen, "cluster.dmqListen");
    const match = DMQ_LISTEN_PATTERN.exec(listen);
    if (!match || !portIn(match, 4) || /^0\.0\.0\.0:/.test(listen)) {
      throw new ConfigError(
        "cluster.dmqListen",
        "must be this node's IPv4 address and a port (ip:port, DMQ listens there over udp), got " +
          JSON.stringify(listen),
      );
    }
    result.dmqListen = listen;
  }
  if (cluster.peers !== undefined) {
    if (!(cluster.peers instanceof Array))
      throw new ConfigError("cluster.peers", "must be a list of the other nodes' DMQ host:port");
    result.peers = cluster.peers.map(function (entry: unknown, index: number) {
      const where = "cluster.peers[" + index + "]";
      const peer = stringAt(entry, where);
      const match = DMQ_PEER_PATTERN.exec(peer);
      if (!match || !portIn(match, 1))
        throw new ConfigError(where, "must be another node's DMQ host:port, got " + JSON.stringify(peer));
      return peer;
    });
  }
  if (cluster.database !== undefined) {
    const url = stringAt(cluster.database, "cluster.database");
    if (/^sqlite:/.test(url)) {
      throw new ConfigError(
        "cluster.database",
        "must be a postgres:// URL: an sqlite file belongs to one node, and every node must read and write the same device records",
      );
    }
    const match = /:([0-9]{1,5})\//.exec(url.substring("postgres://".length));
    if (!POSTGRES_URL_PATTERN.test(url) || (match && !portIn(match, 1))) {
      throw new ConfigError(
        "cluster.database",
        "must be a PostgreSQL URL, postgres://user:password@host:port/database (no quotes, backslashes or spaces), got " +
          JSON.stringify(url.replace(/:[^:@\/]*@/, ":…@")),
      );
    }
    result.database = url;
  }
  if (result.nodeId === 0) return result;
  // Clustered: every part a node needs to join is there and fits the others.
  if (result.nodes < result.nodeId)
    throw new ConfigError(
      "cluster.nodes",
      "must be at least cluster.nodeId (" + result.nodeId + "), got " + result.nodes,
    );
  if (result.dmqListen === undefined)
    throw new ConfigError("cluster.dmqListen", "must be set when cluster.nodeId is: this node's DMQ address, ip:port");
  if (result.database === undefined) {
    throw new ConfigError(
      "cluster.database",
      "must be set when cluster.nodeId is: the postgres:// URL of the device records every node shares",
    );
  }
  if (result.nodes > 1 && result.peers.length === 0)
    throw new ConfigError(
      "cluster.peers",
      "must name at least one other node's DMQ host:port when cluster.nodes is more than 1",
    );
  if (result.peers.length > result.nodes - 1) {
    throw new ConfigError(
      "cluster.peers",
      "names " + result.peers.length + " other nodes, but cluster.nodes is " + result.nodes,
    );
  }
  for (let i = 0; i < result.peers.length; i++) {
    if (result.peers[i] === result.dmqListen)
      throw new ConfigError("cluster.peers[" + i + "]", "is this node's own cluster.dmqListen: list the other nodes");
    if (result.peers.indexOf(result.peers[i]) !== i)
      throw new ConfigError("cluster.peers[" + i + "]", "names " + result.peers[i] + " twice");
  }
  return result;
}

function validateCalls(value: unknown): CallsConfig {
  const calls = objectAt(value, "calls");
  checkKeys(
    calls,
    [
      "strategy",
      "provisional",
      "missedCallPush",
      "answeredElsewherePush",
      "registrationTokenSeconds",
      "maxHeldPerAor",
      "maxPushesPerAorPerMinute",
      "trustedSources",
    ],
    "calls",
  );
  const result = defaultConfig().calls;
  if (calls.strategy !== undefined) result.strategy = oneOf(calls.strategy, "calls.strategy", CALL_STRATEGIES);
  if (calls.provisional !== undefined)
    result.provisional = oneOf(calls.provisional, "calls.provisional", PUSH_PROVISIONALS);
  if (calls.missedCallPush !== undefined)
    result.missedCallPush = booleanAt(calls.missedCallPush, "calls.missedCallPush");
  if (calls.answeredElsewherePush !== undefined)
    result.answeredElsewherePush = booleanAt(calls.answeredElsewherePush, "calls.answeredElsewherePush");
  if (calls.registrationTokenSeconds !== undefined) {
    result.registrationTokenSeconds = integerAt(
      calls.registrationTokenSeconds,
      "calls.registrationTokenSeconds",
      1,
      3600,
    );
  }
  if (calls.maxHeldPerAor !== undefined)
    result.maxHeldPerAor = integerAt(calls.maxHeldPerAor, "calls.maxHeldPerAor", 1, 1000);
  if (calls.maxPushesPerAorPerMinute !== undefined) {
    result.maxPushesPerAorPerMinute = integerAt(
      calls.maxPushesPerAorPerMinute,
      "calls.maxPushesPerAorPerMinute",
      1,
      1000,
    );
  }
  if (calls.trustedSources !== undefined)
    result.trustedSources = cidrListAt(calls.trustedSources, "calls.trustedSources");
  return result;
}

function validateUserAgents(value: unknown): UserAgentRule[] {
  if (!(value instanceof Array)) throw new ConfigError("userAgents", "must be a list of {name, regex}");
  const names: string[] = [];
  return value.map(function (entry: unknown, index: number): UserAgentRule {
    const path = "userAgents[" + index + "]";
    const rule = objectAt(entry, path);
    checkKeys(rule, ["name", "regex", "appIds", "properties", "strategy", "timers"], path);
    const name = stringAt(rule.name, path + ".name");
    if (names.indexOf(name) >= 0) throw new ConfigError(path + ".name", "duplicate rule name " + JSON.stringify(name));
    names.push(name);
    const result: UserAgentRule = {
      name: name,
      regex: checkRegex(stringAt(rule.regex, path + ".regex"), path + ".regex"),
    };
    if (rule.appIds !== undefined) {
      if (!(rule.appIds instanceof Array) || rule.appIds.length === 0)
        throw new ConfigError(path + ".appIds", "must be a non-empty list of app ids");
      result.appIds = rule.appIds.map(function (appId: unknown, i: number) {
        return stringAt(appId, path + ".appIds[" + i + "]");
      });
    }
    if (rule.properties !== undefined) {
      const properties = objectAt(rule.properties, path + ".properties");
      checkKeys(properties, ["appId", "type", "token"], path + ".properties");
      const names: Partial<PushParamNames> = {};
      if (properties.appId !== undefined) names.appId = paramNameAt(properties.appId, path + ".properties.appId");
      if (properties.type !== undefined) names.type = paramNameAt(properties.type, path + ".properties.type");
      if (properties.token !== undefined) names.token = paramNameAt(properties.token, path + ".properties.token");
      result.properties = names;
    }
    if (rule.strategy !== undefined) result.strategy = oneOf(rule.strategy, path + ".strategy", CALL_STRATEGIES);
    if (rule.timers !== undefined) result.timers = validateTimers(rule.timers, path + ".timers", {});
    return result;
  });
}

/** A Contact param name as the parser sees it (lower-cased): token characters of RFC 3261. */
function paramNameAt(value: unknown, path: string): string {
  const name = stringAt(value, path);
  if (!/^[A-Za-z0-9.!%*_+`'~-]+$/.test(name))
    throw new ConfigError(path, "must be a Contact parameter name, got " + JSON.stringify(name));
  return name.toLowerCase();
}

/** Allowed range of each timer, in ms: the global `timers` and a User-Agent rule's `timers` alike. */
const TIMER_RANGES: { [name: string]: [number, number] } = {
  inviteFirstMs: [100, 60000],
  pushWaitMs: [1000, 600000],
  afterWakeMs: [1000, 600000],
};

function validateTimers<T extends Partial<TimersConfig>>(value: unknown, path: string, target: T): T {
  const timers = objectAt(value, path);
  checkKeys(timers, ["inviteFirstMs", "pushWaitMs", "afterWakeMs"], path);
  for (const name in TIMER_RANGES) {
    if (!Object.prototype.hasOwnProperty.call(TIMER_RANGES, name) || timers[name] === undefined) continue;
    (target as { [name: string]: number })[name] = integerAt(
      timers[name],
      path + "." + name,
      TIMER_RANGES[name][0],
      TIMER_RANGES[name][1],
    );
  }
  return target;
}

function validateMessages(value: unknown): MessagesConfig {
  const messages = objectAt(value, "messages");
  checkKeys(messages, ["retentionDays", "maxPerAor", "maxBodyBytes", "previewInPush"], "messages");
  const result = defaultConfig().messages;
  if (messages.retentionDays !== undefined)
    result.retentionDays = integerAt(messages.retentionDays, "messages.retentionDays", 1, 365);
  if (messages.maxPerAor !== undefined)
    result.maxPerAor = integerAt(messages.maxPerAor, "messages.maxPerAor", 1, 10000);
  if (messages.maxBodyBytes !== undefined)
    result.maxBodyBytes = integerAt(messages.maxBodyBytes, "messages.maxBodyBytes", 1, 30000);
  if (messages.previewInPush !== undefined)
    result.previewInPush = booleanAt(messages.previewInPush, "messages.previewInPush");
  return result;
}

/**
 * Checks a parsed pusher.json and fills in defaults. Unknown keys are refused, naming the key.
 * Throws ConfigError; returns a deeply frozen config.
 */
export function validateConfig(input: unknown): PusherConfig {
  const config = defaultConfig();
  const root = objectAt(input === undefined ? {} : input, "(root)");
  checkKeys(
    root,
    [
      "sip",
      "cluster",
      "timers",
      "calls",
      "kazoo",
      "kamailio",
      "userAgents",
      "devices",
      "messages",
      "registrations",
      "apps",
      "link",
      "metrics",
      "stateDir",
      "log",
    ],
    "",
  );

  if (root.sip !== undefined) {
    const sip = objectAt(root.sip, "sip");
    checkKeys(sip, ["listen", "auth", "tls"], "sip");
    if (sip.listen !== undefined) {
      if (!(sip.listen instanceof Array) || sip.listen.length === 0)
        throw new ConfigError("sip.listen", "must be a non-empty list");
      config.sip.listen = sip.listen.map(function (entry: unknown, index: number) {
        return checkListen(stringAt(entry, "sip.listen[" + index + "]"), "sip.listen[" + index + "]");
      });
    }
    if (sip.auth !== undefined) {
      if (typeof sip.auth !== "boolean") throw new ConfigError("sip.auth", "must be true or false");
      config.sip.auth = sip.auth;
    }
    if (sip.tls !== undefined) {
      const tls = objectAt(sip.tls, "sip.tls");
      checkKeys(tls, ["certificateFile", "keyFile"], "sip.tls");
      config.sip.tls = {
        certificateFile: stringAt(tls.certificateFile, "sip.tls.certificateFile"),
        keyFile: stringAt(tls.keyFile, "sip.tls.keyFile"),
      };
    }
  }
  if (root.cluster !== undefined) config.cluster = validateCluster(root.cluster);
  if (root.timers !== undefined) {
    validateTimers(root.timers, "timers", config.timers);
  }
  if (root.calls !== undefined) config.calls = validateCalls(root.calls);
  if (root.kamailio !== undefined) config.kamailio = validateKamailio(root.kamailio);
  if (root.kazoo !== undefined) {
    const kazoo = objectAt(root.kazoo, "kazoo");
    checkKeys(kazoo, ["trustedSources"], "kazoo");
    if (kazoo.trustedSources !== undefined)
      config.kazoo.trustedSources = cidrListAt(kazoo.trustedSources, "kazoo.trustedSources");
  }
  if (root.userAgents !== undefined) config.userAgents = validateUserAgents(root.userAgents);
  if (root.devices !== undefined) {
    const devices = objectAt(root.devices, "devices");
    checkKeys(devices, ["retentionDays", "maxPerAor"], "devices");
    if (devices.retentionDays !== undefined)
      config.devices.retentionDays = integerAt(devices.retentionDays, "devices.retentionDays", 1, 3650);
    if (devices.maxPerAor !== undefined)
      config.devices.maxPerAor = integerAt(devices.maxPerAor, "devices.maxPerAor", 1, 1000);
  }
  if (root.messages !== undefined) config.messages = validateMessages(root.messages);
  if (root.registrations !== undefined) {
    const registrations = objectAt(root.registrations, "registrations");
    checkKeys(registrations, ["refreshBeforeSeconds"], "registrations");
    if (registrations.refreshBeforeSeconds !== undefined) {
      config.registrations.refreshBeforeSeconds = integerAt(
        registrations.refreshBeforeSeconds,
        "registrations.refreshBeforeSeconds",
        30,
        3600,
      );
    }
  }
  if (root.apps !== undefined) config.apps = validateApps(root.apps);
  if (root.metrics !== undefined) {
    const metrics = objectAt(root.metrics, "metrics");
    checkKeys(metrics, ["port"], "metrics");
    if (metrics.port !== undefined) config.metrics.port = integerAt(metrics.port, "metrics.port", 0, 65535);
  }
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
