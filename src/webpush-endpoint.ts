// Which Web Push endpoints may be pushed to. The endpoint is the device token a SIP phone registers (RFC 8599
// pn-prid), so without a list any REGISTER could make the helper send HTTPS requests to any host and port (an
// internal service, say). Pure and ES5 (the plugin checks the text at REGISTER; the helper checks again, on the
// URL it is about to send to).

/** The push services browsers subscribe with: Chrome, Firefox, Edge, Safari. */
export const DEFAULT_WEBPUSH_ENDPOINT_HOSTS = [
  "fcm.googleapis.com",
  "*.push.services.mozilla.com",
  "*.notify.windows.com",
  "*.push.apple.com",
];

/** HTTPS's port: the only one a pattern without `:<port>` allows. */
const HTTPS_PORT = 443;

/**
 * A host pattern: a host name or IP address, or `*.` and a domain (any host below it), optionally with `:<port>`
 * (that port instead of 443, e.g. a push service of your own on 8443).
 */
export function isEndpointHostPattern(pattern: string): boolean {
  const match = /^((\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:([1-9][0-9]{0,4}))?$/.exec(
    pattern,
  );
  return match !== null && (match[7] === undefined || match[7] === "" || Number(match[7]) <= 65535);
}

/** The lower-cased host and the port (443 when none is given) of an https URL, or null when it is not one or has credentials in it. */
export function endpointAuthority(url: string): { host: string; port: number } | null {
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
  const host = (colon >= 0 ? authority.substring(0, colon) : authority).toLowerCase();
  return { host: host, port: colon >= 0 ? Number(authority.substring(colon + 1)) : HTTPS_PORT };
}

/** The lower-cased host (no port) of an https URL, or null when it is not one or has credentials in it. */
export function endpointHost(url: string): string | null {
  const authority = endpointAuthority(url);
  return authority ? authority.host : null;
}

/** Whether `patterns` allow `host` on `port`: 443 unless the matching pattern names its own port. */
export function hostAllowed(host: string, port: number, patterns: string[]): boolean {
  for (let i = 0; i < patterns.length; i++) {
    const colon = patterns[i].indexOf(":");
    const pattern = colon >= 0 ? patterns[i].substring(0, colon) : patterns[i];
    if (port !== (colon >= 0 ? Number(patterns[i].substring(colon + 1)) : HTTPS_PORT)) continue;
    if (pattern.substring(0, 2) === "*.") {
      const domain = pattern.substring(1);
      if (host.length > domain.length && host.substring(host.length - domain.length) === domain) return true;
    } else if (host === pattern) {
      return true;
    }
  }
  return false;
}

/** Whether `url` is an https URL whose host and port `patterns` allow (the plugin's check, at REGISTER). */
export function endpointAllowed(url: string, patterns: string[]): boolean {
  const authority = endpointAuthority(url);
  return authority !== null && hostAllowed(authority.host, authority.port, patterns);
}

/**
 * The helper's check, on the URL it sends to: the host and port WHATWG URL parsing resolved (`\` counts as `/`
 * there, `0x7f.1` is 127.0.0.1), so nothing the plugin's reading of the text missed can reach another host.
 */
export function parsedEndpointAllowed(
  url: { protocol: string; hostname: string; port: string; username: string; password: string },
  patterns: string[],
): boolean {
  if (url.protocol !== "https:" || url.username !== "" || url.password !== "") return false;
  return hostAllowed(url.hostname, url.port === "" ? HTTPS_PORT : Number(url.port), patterns);
}
