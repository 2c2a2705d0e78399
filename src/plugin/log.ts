// Log lines from the plugin go through Kamailio's own logger, prefixed so operators can grep them. Messages carry
// fields from the network: every control character is escaped (src/log-text.ts), so one message is one line.
import { escapeControlCharacters } from "../log-text";

// Duktape's own built-in (https://duktape.org/guide.html#builtin-duktape): absent in Node, where the unit tests run.
declare const Duktape: { enc(format: "jx", value: string): string } | undefined;

/**
 * The message, escaped. Duktape's JX encoder escapes natively every character outside printable ASCII (and `"`,
 * `\`): a message it leaves as long as it was, plus its quotes, has nothing to escape, and most have nothing once the
 * `…` of masked tokens is set aside. The regex scan costs Duktape about 450 instructions per character, 7 times the
 * JX check on a `device stored` line (docs/benchmarks.md).
 */
function safe(message: string): string {
  if (typeof Duktape !== "undefined") {
    // (one `…` is usual: one masked token; with more the check below fails and the regex scan decides)
    const plain = message.indexOf("\u2026") < 0 ? message : message.replace("\u2026", "");
    if (Duktape.enc("jx", plain).length === plain.length + 2) return message;
  }
  return escapeControlCharacters(message);
}

export function logInfo(message: string): void {
  KSR.info("pusher: " + safe(message) + "\n");
}

export function logWarn(message: string): void {
  KSR.warn("pusher: " + safe(message) + "\n");
}

export function logError(message: string): void {
  KSR.err("pusher: " + safe(message) + "\n");
}
