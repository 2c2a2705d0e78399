// Every stable error code the plugin, the helper and the CLI emit, with what it means and what to do: the one
// catalog. Callers and tests match on codes, never on message text, and operators grep the codes: never rename
// one. docs/errors.md shows each as a `Code | Meaning | What to do` row, and test/docs.test.ts fails when a row
// and this catalog disagree; test/errors.test.ts fails when a PUSHER_ERR_* string in src/ is missing here.
// Pure data, ES5-safe (src/plugin/tsconfig.json type-checks it for Duktape). The plugin emits no code of its own
// today (it logs the helper's); if it ever does, let it write the code as a literal typed by ErrorCode (`import
// type`, no bytes): importing ERROR_CODES would add its texts, ~14 KB, to dist/pusher.js (app_jsdt truncates it
// at 128 KiB).
//
// The helper's codes: reported to Kamailio with each failed push (pusher_pushes_total's `code`) and logged;
// provider-errors.ts maps the providers' answers onto them. `pusher test-push`, `pusher check` and
// `pusher apps add-*` reuse those of credentials and providers.
export const ERROR_CODES = {
  PUSHER_ERR_CONFIG: {
    meaning:
      "The configuration is invalid (pusher.json, or a command-line option that overrides a key of it), or the helper cannot read its file; the message names the key.",
    action: "Fix that key in pusher.json (or the option) and restart.",
  },
  PUSHER_ERR_NO_APP: {
    meaning: "No credentials are configured for the device's app id and provider.",
    action:
      "Add the app with `pusher apps add-apple|add-apple-token|add-firebase|add-webpush`, spelled exactly as the app sends its app-id.",
  },
  PUSHER_ERR_APP_DISABLED: {
    meaning: "The device's app is configured with `enabled: false` (Kazoo's per-app switch); no push was sent.",
    action: "Set apps.<appId>.enabled to true (or remove the key) to push to it again.",
  },
  PUSHER_ERR_BAD_DEVICE: {
    meaning:
      "The device record lacks what its provider needs (e.g. a Web Push endpoint that is not https or not in the app's endpointHosts), names a Firebase project that is neither the service account's nor in the app's firebase.projectIds (a record stored before REGISTERs were checked), or it is a call-ended message for a Web Push subscription without keys; no push was sent, nothing is held.",
    action: "The phone must register again with complete push parameters.",
  },
  PUSHER_ERR_CALL_ENDED: {
    meaning: "The call had stopped ringing before the push could be sent, so none was sent.",
    action: "None if rare; if frequent, the helper is overloaded or timers.pushWaitMs is too short.",
  },
  PUSHER_ERR_APNS_UNREGISTERED: {
    meaning:
      "APNs 410 Unregistered/ExpiredToken: the token is no longer valid for the app; it is dropped, unless the phone registered it again after the time APNs gives.",
    action: "None: the app registers a new token when it runs again.",
  },
  PUSHER_ERR_APNS_BAD_DEVICE_TOKEN: {
    meaning:
      "APNs 400 BadDeviceToken at the host of the token's environment. The push is then tried once at the other host (sandboxHost or host): a token accepted there is kept (logged: the phone registered a development token as production or the reverse); one refused there too is dropped; any other answer keeps it.",
    action:
      "None when dropped. When logged as the other environment's token, have the app register with pn-provider=apns.dev for development builds (or without it for App Store builds).",
  },
  PUSHER_ERR_APNS_TOKEN_NOT_FOR_TOPIC: {
    meaning:
      "APNs 400 DeviceTokenNotForTopic: the topic we chose (from the app id or pn-param) does not fit the token: another app's bundle, or a PushKit token pushed as an alert (or the reverse). A configuration error, logged as one; the device is kept.",
    action:
      "Check the app id (or pn-param) matches the app's bundle id, and that the phone sends its PushKit (VoIP) token for calls.",
  },
  PUSHER_ERR_APNS_CREDENTIALS: {
    meaning:
      "APNs refused the credentials (403 BadCertificate, BadCertificateEnvironment, MissingProviderToken, InvalidProviderToken or ExpiredProviderToken after one refresh, or the TLS handshake), or the certificate/key file cannot be read; tokens are kept, the app's APNs pushes are held 30 s.",
    action:
      "Check apps.<appId>.apple: certificate readable, not expired, VoIP-enabled, right environment; or key file, keyId and teamId as in the Apple developer account, and the host's clock.",
  },
  PUSHER_ERR_APNS_SERVER_UNTRUSTED: {
    meaning: "The APNs server's TLS certificate could not be verified.",
    action: "Check apps.<appId>.apple.host and the system CA store (or NODE_EXTRA_CA_CERTS for a private CA).",
  },
  PUSHER_ERR_APNS_THROTTLED: {
    meaning: "APNs 429: too many pushes to this device token (or too many provider token updates).",
    action: "Retried with backoff while the call rings; if frequent, look for a client that calls in a loop.",
  },
  PUSHER_ERR_APNS_UNAVAILABLE: {
    meaning: "APNs 500/503: APNs had an internal error or is shutting down.",
    action: "Retried with backoff while the call rings; see https://developer.apple.com/system-status/ if it persists.",
  },
  PUSHER_ERR_APNS_TIMEOUT: {
    meaning: "APNs gave no answer in time; the push may or may not have been delivered.",
    action: "Retried once while the call rings; check the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_CONNECTION: {
    meaning: "The connection to APNs failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to APNs (TCP 443) from this host.",
  },
  PUSHER_ERR_APNS_REJECTED: {
    meaning:
      "APNs rejected the request (another 4xx, e.g. BadTopic, or a 403 that proves nothing against the credentials, e.g. Forbidden); the token is kept, nothing is held.",
    action: "Read the reason in the log line; usually a configuration or payload problem.",
  },
  PUSHER_ERR_FCM_UNREGISTERED: {
    meaning: "FCM 404 UNREGISTERED: the app instance is gone or its token expired; it is dropped.",
    action: "None: the app registers a new token when it runs again.",
  },
  PUSHER_ERR_FCM_SENDER_ID_MISMATCH: {
    meaning: "FCM 403 SENDER_ID_MISMATCH: the token belongs to another Firebase project; it is dropped.",
    action: "Check the app's service account is from the project the app registers with.",
  },
  PUSHER_ERR_FCM_INVALID_TOKEN: {
    meaning: "FCM 400 INVALID_ARGUMENT: the registration token is not a valid FCM token; it is dropped.",
    action: "None, unless the phone's app sends something other than its FCM token.",
  },
  PUSHER_ERR_FCM_CREDENTIALS: {
    meaning:
      "FCM or Google's OAuth refused the service account (401 after one refresh, invalid_grant, or 403 PERMISSION_DENIED / THIRD_PARTY_AUTH_ERROR on the service account's own project), or its file cannot be read; tokens are kept, the app's FCM pushes are held 30 s.",
    action:
      "Check apps.<appId>.firebase.serviceAccountFile: a current key of a service account with the Firebase Messaging role, and the host's clock.",
  },
  PUSHER_ERR_FCM_LEGACY_KEY: {
    meaning:
      "A legacy FCM server key was given where a service account JSON is expected; Google shut the legacy API down in 2024.",
    action:
      "Firebase console → Project settings → Service accounts → Generate new private key; then `pusher apps add-firebase <app-id> <that file>`.",
  },
  PUSHER_ERR_FCM_THROTTLED: {
    meaning: "FCM 429 QUOTA_EXCEEDED: the project's or the device's message rate was exceeded.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_FCM_UNAVAILABLE: {
    meaning: "FCM or the OAuth endpoint answered 500/503 (INTERNAL, UNAVAILABLE).",
    action:
      "Retried with backoff and Retry-After while the call rings; see https://status.firebase.google.com/ if it persists.",
  },
  PUSHER_ERR_FCM_REJECTED: {
    meaning:
      "FCM rejected the request (another 4xx, e.g. INVALID_ARGUMENT about the message, NOT_FOUND for a wrong project id, or 403 PERMISSION_DENIED / THIRD_PARTY_AUTH_ERROR on a project of projectIds that is not the service account's); the token is kept, nothing is held.",
    action: "Read the reason in the log line; usually a configuration problem (project id).",
  },
  PUSHER_ERR_FCM_TIMEOUT: {
    meaning: "FCM or the OAuth endpoint gave no answer in time; the push may or may not have been delivered.",
    action:
      "Retried once while the call rings; check the network path to fcm.googleapis.com and oauth2.googleapis.com.",
  },
  PUSHER_ERR_FCM_CONNECTION: {
    meaning: "The connection to FCM or the OAuth endpoint failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to Google (TCP 443).",
  },
  PUSHER_ERR_FCM_SERVER_UNTRUSTED: {
    meaning: "The FCM or OAuth server's TLS certificate could not be verified.",
    action: "Check apps.<appId>.firebase.host, the service account's token_uri and the system CA store.",
  },
  PUSHER_ERR_WEBPUSH_GONE: {
    meaning: "The Web Push service answered 404/410: the subscription is gone; it is dropped.",
    action: "None: the browser subscribes again when the web app runs.",
  },
  PUSHER_ERR_WEBPUSH_CREDENTIALS: {
    meaning:
      "The Web Push service refused the VAPID signature (401/403), or the VAPID key file cannot be read; subscriptions are kept.",
    action:
      "Check apps.<appId>.webpush: the key is the one whose public key the web app subscribed with, subject is mailto: or https:, the host's clock.",
  },
  PUSHER_ERR_WEBPUSH_THROTTLED: {
    meaning: "The Web Push service answered 429.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_WEBPUSH_UNAVAILABLE: {
    meaning: "The Web Push service answered 5xx.",
    action: "Retried with backoff and Retry-After while the call rings.",
  },
  PUSHER_ERR_WEBPUSH_REJECTED: {
    meaning: "The Web Push service rejected the request (another 4xx, e.g. 413); the subscription is kept.",
    action: "Read the reason in the log line.",
  },
  PUSHER_ERR_WEBPUSH_TIMEOUT: {
    meaning: "The Web Push service gave no answer in time; the push may or may not have been delivered.",
    action: "Retried once while the call rings; check the network path to the push service.",
  },
  PUSHER_ERR_WEBPUSH_CONNECTION: {
    meaning: "The connection to the Web Push service failed, was reset or closed before the answer.",
    action: "Retried while the call rings; check DNS and the network path to the push service.",
  },
  PUSHER_ERR_WEBPUSH_SERVER_UNTRUSTED: {
    meaning: "The Web Push service's TLS certificate could not be verified.",
    action: "Check the system CA store.",
  },
  PUSHER_ERR_LINK_FRAME: {
    meaning:
      "A malformed or oversized (> 1 MiB) netstring frame came from Kamailio; the connection was dropped and reopened.",
    action: "Check that evapi runs with netstring_format=1 and nothing else writes to its port.",
  },
  PUSHER_ERR_LINK_SECRET: {
    meaning:
      "The link secret file (the helper's --link-secret-file, else <stateDir>/link.secret) is missing, unreadable, shorter than 32 characters, or readable by group or others; the helper does not connect.",
    action:
      "`pusher start` writes it; for your own Kamailio create it as docs/security.md says (mode 0600, the file PUSHER_LINK_SECRET_FILE names).",
  },
  PUSHER_ERR_LINK_AUTH: {
    meaning:
      "The process on the link port did not prove the link secret (wrong link-proof, or no challenge within 5 s): another secret file, a pusher.cfg older than this helper, or a process squatting the port. The helper sent it nothing but a random nonce, and reconnects.",
    action:
      "Check that Kamailio's PUSHER_LINK_SECRET_FILE and the helper read the same file, and what listens on link.port (ss -ltnp).",
  },
  PUSHER_ERR_BAD_MESSAGE: {
    meaning: "A frame from Kamailio was not a valid plugin message; it was ignored.",
    action: "Check that the plugin and the helper come from the same release.",
  },
  // The CLI's own codes (`pusher <command>`, src/cli): CliError carries one; the handler prints it with its message
  // as `pusher: <code>: <message>` and exits 2 for PUSHER_ERR_USAGE, 1 for any other.
  PUSHER_ERR_USAGE: {
    meaning:
      "The command line is wrong: an unknown command or option, a missing or malformed argument (e.g. not user@domain, an empty password).",
    action: "Run `pusher help`; the message names the argument. Exits 2.",
  },
  PUSHER_ERR_CONFIG_FILE: {
    meaning: "pusher.json cannot be read, or is not valid JSON.",
    action:
      "Check the path (--config or PUSHER_CONFIG), the file's permissions and its JSON syntax at the place the message gives.",
  },
  PUSHER_ERR_INSTALL: {
    meaning:
      "The installation is incomplete: no kamailio in PATH (or it cannot be run), dist/pusher.js or dist/pusher-helper.js missing, or kamailio/pusher.cfg not found beside the CLI.",
    action: "Install Debian's kamailio packages the message names (npm start installs them) and run npm run build.",
  },
  PUSHER_ERR_KAMAILIO_VERSION: {
    meaning: "`kamailio -v` failed or printed no version this CLI can read, or the Kamailio is older than 5.6.",
    action: "Install Kamailio 5.6 or later (Debian 12 or 13 packages), or put a newer kamailio first in PATH.",
  },
  PUSHER_ERR_KAMAILIO: {
    meaning: "`pusher start`: Kamailio exited during start-up, or did not answer on its control socket within 15 s.",
    action: "Read Kamailio's own log lines printed above (a cfg error, a port in use).",
  },
  PUSHER_ERR_RPC: {
    meaning:
      "A kamcmd call to the running Kamailio failed (no Kamailio on the control socket, or it refused the command).",
    action: "Check that pusher start (or your Kamailio) runs, and --kamailio-ctl names its ctl socket.",
  },
  PUSHER_ERR_RELOAD: {
    meaning:
      "`pusher reload` cannot tell the helper (its pid file is missing or holds no process id, or the process cannot be signalled), or cannot read the cluster options pusher start keeps in the state dir (cluster-options.json).",
    action: "Check that pusher start runs (it writes both files) and that you run reload as its user.",
  },
  PUSHER_ERR_METRICS: {
    meaning:
      "`pusher metrics` could not read the helper's metrics endpoint or Kamailio's statistics (or metrics.port is 0); it printed what it could.",
    action: "Check that pusher start runs, metrics.port is set, and --kamailio-ctl names the ctl socket.",
  },
  PUSHER_ERR_CHECK: {
    meaning: "`pusher check` found a failing check (Kamailio, or an app's credentials); the lines above say which.",
    action: "Fix what the FAIL lines name and run pusher check again.",
  },
  PUSHER_ERR_BAD_APP_ID: {
    meaning: 'An app id with characters other than letters, digits, ".", "_" or "-".',
    action: "Use the app id the phone sends (pn-param or app-id), e.g. com.example.phone.",
  },
  PUSHER_ERR_NO_SUCH_APP: {
    meaning: "`pusher apps remove|enable|disable` named an app the configuration does not have.",
    action: "See `pusher apps list` for the app ids.",
  },
  PUSHER_ERR_BAD_CERTIFICATE: {
    meaning:
      "`pusher apps add-apple`: the PEM cannot be read, holds no certificate or no private key, the key is encrypted or does not belong to the certificate.",
    action: "Export it without a passphrase: openssl pkcs12 -in cert.p12 -out cert.pem -clcerts -nodes.",
  },
  PUSHER_ERR_BAD_KEY: {
    meaning:
      "`pusher apps add-apple-token` or `add-webpush`: the key file cannot be read or is not an unencrypted EC P-256 private key, or the Key ID or Team ID is not 10 upper-case letters and digits.",
    action:
      "Use Apple's AuthKey_<KEYID>.p8 with the Key ID and Team ID of the developer account; for Web Push a P-256 key (openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt).",
  },
  PUSHER_ERR_NO_SUCH_RULE: {
    meaning: "`pusher ua remove` named a User-Agent rule the configuration does not have.",
    action: "See `pusher ua list` for the rule names.",
  },
  PUSHER_ERR_NO_SUCH_USER: {
    meaning: "`pusher users remove` named a SIP user the users database does not have.",
    action: "See `pusher users list`.",
  },
  PUSHER_ERR_USERS_DATABASE: {
    meaning: "The SIP users database (sqlite, in the state dir) cannot be written, or the sqlite3 command is missing.",
    action: "apt-get install sqlite3; check the state dir's owner and permissions.",
  },
  PUSHER_ERR_LOCATION_DATABASE: {
    meaning:
      "`pusher start`: the registrations database (location.sqlite in the state dir) cannot be created, or the sqlite3 command is missing.",
    action: "apt-get install sqlite3; check the state dir's owner and permissions.",
  },
  PUSHER_ERR_DEVICES_DATABASE: {
    meaning:
      "`pusher devices` (every AOR, more than one htable.dump reply holds) cannot read the device records' database (devices.sqlite in the state dir; on a cluster node cluster.database), or the sqlite3 or psql command is missing.",
    action:
      "apt-get install sqlite3 (postgresql-client on a cluster node); run it as the user pusher start runs as; check that the PostgreSQL server answers.",
  },
  PUSHER_ERR_IMPORT: {
    meaning:
      "`pusher import-kazoo`: the file is not Kazoo's system_config/pusher JSON object, holds nothing to import, or some of its items could not be imported (listed above).",
    action: "Fix the items listed and run import-kazoo again (--dry-run shows what it would write).",
  },
} as const;

/** A stable error code: a key of ERROR_CODES. */
export type ErrorCode = keyof typeof ERROR_CODES;
