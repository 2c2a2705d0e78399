// How a device or registration token may appear in a log line or `pusher devices`: never in full. One rule for
// the plugin (Duktape, ES5), the helper and the CLI, so an operator can match one side's line with the other's.

// Below this length the first-6/last-4 mask would show half the token or more, so nothing of it is shown. Real
// tokens are longer: APNs 64 hex digits, FCM about 150 characters, registration tokens 36 (a UUID).
const SHORTEST_MASKABLE_TOKEN = 20;

/** `token` as logs show it: its first 6 characters, "…", its last 4; "…" alone below 20 characters. */
export function maskToken(token: string): string {
  if (token.length < SHORTEST_MASKABLE_TOKEN) return "…";
  return token.substring(0, 6) + "…" + token.substring(token.length - 4);
}
