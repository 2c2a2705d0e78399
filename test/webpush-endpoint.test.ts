// Which Web Push endpoints may be pushed to (src/webpush-endpoint.ts): the host of an https URL against a list.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_WEBPUSH_ENDPOINT_HOSTS,
  endpointAllowed,
  endpointHost,
  isEndpointHostPattern,
  parsedEndpointAllowed,
} from "../src/webpush-endpoint";

describe("endpointHost", () => {
  it.each([
    ["https://fcm.googleapis.com/fcm/send/abc", "fcm.googleapis.com"],
    ["https://Updates.Push.Services.Mozilla.com:443/wpush/v2/x", "updates.push.services.mozilla.com"],
    ["https://127.0.0.1:8443?x=1", "127.0.0.1"],
    ["HTTPS://web.push.apple.com#frag", "web.push.apple.com"],
  ])("%s → %s", (url, host) => {
    expect(endpointHost(url)).toBe(host);
  });

  it.each([
    ["not https", "http://fcm.googleapis.com/x"],
    ["credentials in the authority", "https://fcm.googleapis.com@10.0.0.5/x"],
    ["an IPv6 literal", "https://[::1]/x"],
    ["no host", "https:///x"],
    ["a port that is not a number", "https://fcm.googleapis.com:x/y"],
  ])("none for %s", (_what, url) => {
    expect(endpointHost(url)).toBeNull();
  });
});

describe("endpointAllowed", () => {
  it("accepts the browsers' push services by default", () => {
    for (const url of [
      "https://fcm.googleapis.com/fcm/send/abc",
      "https://updates.push.services.mozilla.com/wpush/v2/abc",
      "https://wns2-par02p.notify.windows.com/w/?token=abc",
      "https://web.push.apple.com/QOT7xxg",
    ]) {
      expect(endpointAllowed(url, DEFAULT_WEBPUSH_ENDPOINT_HOSTS), url).toBe(true);
    }
  });

  it("refuses other hosts, look-alikes and the bare domain of a wildcard", () => {
    for (const url of [
      "https://10.0.0.5/admin",
      "https://evilpush.services.mozilla.com.example/x",
      "https://xnotify.windows.com/x",
      "https://push.apple.com/x",
    ]) {
      expect(endpointAllowed(url, DEFAULT_WEBPUSH_ENDPOINT_HOSTS), url).toBe(false);
    }
  });

  it("allows port 443 only, unless the pattern names another port", () => {
    expect(endpointAllowed("https://127.0.0.1/push/1", ["127.0.0.1"])).toBe(true);
    expect(endpointAllowed("https://127.0.0.1:443/push/1", ["127.0.0.1"])).toBe(true);
    expect(endpointAllowed("https://127.0.0.1:9443/push/1", ["127.0.0.1"])).toBe(false);
    expect(endpointAllowed("https://fcm.googleapis.com:8080/fcm/send/abc", DEFAULT_WEBPUSH_ENDPOINT_HOSTS)).toBe(false);
    expect(endpointAllowed("https://127.0.0.1:9443/push/1", ["127.0.0.1:9443"])).toBe(true);
    expect(endpointAllowed("https://127.0.0.1/push/1", ["127.0.0.1:9443"])).toBe(false);
    expect(endpointAllowed("https://a.push.example.net:8443/x", ["*.push.example.net:8443"])).toBe(true);
    expect(endpointAllowed("https://127.0.0.2:9443/push/1", ["127.0.0.1:9443"])).toBe(false);
  });
});

describe("parsedEndpointAllowed (the helper's check, on what new URL resolves)", () => {
  it("checks the host a backslash or a numeric address resolves to, not the text", () => {
    // The text's host looks like a Mozilla push server; WHATWG URL reads `\\` as `/`, so the request would go to 127.0.0.1.
    const tricked = "https://127.0.0.1\\.push.services.mozilla.com/wpush/v2/x";
    expect(new URL(tricked).hostname).toBe("127.0.0.1");
    expect(parsedEndpointAllowed(new URL(tricked), DEFAULT_WEBPUSH_ENDPOINT_HOSTS)).toBe(false);
    expect(parsedEndpointAllowed(new URL("https://0x7f.1/x"), ["127.0.0.1"])).toBe(true);
    expect(parsedEndpointAllowed(new URL("https://0x7f.1/x"), ["fcm.googleapis.com"])).toBe(false);
  });

  it("allows port 443 only unless the pattern names the port, and refuses credentials and other schemes", () => {
    expect(
      parsedEndpointAllowed(
        new URL("https://updates.push.services.mozilla.com/wpush/v2/x"),
        DEFAULT_WEBPUSH_ENDPOINT_HOSTS,
      ),
    ).toBe(true);
    expect(
      parsedEndpointAllowed(
        new URL("https://updates.push.services.mozilla.com:444/wpush/v2/x"),
        DEFAULT_WEBPUSH_ENDPOINT_HOSTS,
      ),
    ).toBe(false);
    expect(parsedEndpointAllowed(new URL("https://127.0.0.1:9443/x"), ["127.0.0.1:9443"])).toBe(true);
    expect(parsedEndpointAllowed(new URL("https://user@fcm.googleapis.com/x"), DEFAULT_WEBPUSH_ENDPOINT_HOSTS)).toBe(
      false,
    );
    expect(parsedEndpointAllowed(new URL("http://fcm.googleapis.com/x"), DEFAULT_WEBPUSH_ENDPOINT_HOSTS)).toBe(false);
  });
});

describe("isEndpointHostPattern", () => {
  it("takes host names, IPv4 addresses and *.<domain>, each with a port or without", () => {
    for (const pattern of [
      "fcm.googleapis.com",
      "127.0.0.1",
      "*.notify.windows.com",
      "localhost",
      "127.0.0.1:8443",
      "*.push.example.net:65535",
    ])
      expect(isEndpointHostPattern(pattern), pattern).toBe(true);
  });

  it("refuses URLs, bad ports, inner wildcards and upper case", () => {
    for (const pattern of [
      "https://fcm.googleapis.com",
      "127.0.0.1:",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "127.0.0.1:08443",
      "push.*.com",
      "*",
      "FCM.googleapis.com",
      "",
    ]) {
      expect(isEndpointHostPattern(pattern), pattern).toBe(false);
    }
  });
});
