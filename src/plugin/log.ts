// Log lines from the plugin go through Kamailio's own logger, prefixed so operators can grep them.

export function logInfo(message: string): void {
  KSR.info("pusher: " + message + "\n");
}

export function logWarn(message: string): void {
  KSR.warn("pusher: " + message + "\n");
}

export function logError(message: string): void {
  KSR.err("pusher: " + message + "\n");
}

/** Tokens never appear in logs in full: first 6 and last 4 characters. */
export function maskToken(token: string): string {
  if (token.length <= 12) return "…";
  return token.substring(0, 6) + "…" + token.substring(token.length - 4);
}
