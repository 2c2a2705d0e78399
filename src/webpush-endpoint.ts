// Which Web Push endpoints may be pushed to. The endpoint is the device token a SIP phone registers (RFC 8599
// pn-prid), so without a list any REGISTER could make the helper send HTTPS requests to any host (an internal
// service, say). Pure and ES5 (the plugin checks at REGISTER, the helper again before sending).

/** The push services browsers subscribe with: Chrome, Firefox, Edge, Safari. */
export const DEFAULT_WEBPUSH_ENDPOINT_HOSTS = ["fcm.googleapis.com", "*.push.services.mozilla.com", "*.notify.windows.com", "*.push.apple.com"];

/** A host pattern: a host name or IP address, or `*.` and a domain (any host below it). */
export function isEndpointHostPattern(pattern: string): boolean {
  return /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(pattern);
}

/** The lower-cased host (no port) of an https URL, or null when it is not one or has credentials in it. */
export function endpointHost(url: string): string | null {
  if (url.substring(0, 8).toLowerCase() !== "https://") return null;
  const rest = url.substring(8);
  let end = rest.length;
  const stops = ["/", "?", "#"];
  for (let i = 0; i < stops.length; i++) {
    const at = rest.indexOf(stops[i]);
    if (at >= 0 && at < end) end = at;
  }
  const authority = rest.substring(0, end);
  if (!authority || authority.indexOf("@") >= 0 || authority.charAt(0) === "[") return null;
  const colon = authority.indexOf(":");
  if (colon >= 0 && !/^:\d{1,5}$/.test(authority.substring(colon))) return null;
  return (colon >= 0 ? authority.substring(0, colon) : authority).toLowerCase();
}

/** Whether `url` is an https URL whose host one of `patterns` names. */
export function endpointAllowed(url: string, patterns: string[]): boolean {
  const host = endpointHost(url);
  if (host === null) return false;
  for (let i = 0; i < patterns.length; i++) {
    const pattern = patterns[i];
    if (pattern.substring(0, 2) === "*.") {
      const domain = pattern.substring(1);
      if (host.length > domain.length && host.substring(host.length - domain.length) === domain) return true;
    } else if (host === pattern) {
      return true;
    }
  }
  return false;
}
