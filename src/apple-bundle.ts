// An Apple app's bundle id from its app id: Kazoo's rule, which the helper's APNs topics follow (a trailing `.dev`
// or `.prod` names the environment; a `.voip` a Kazoo operator spelled into the app id is the VoIP topic's).
// Pure and ES5-safe: the plugin checks an RFC 8599 pn-param's topic against it at REGISTER, the helper builds
// its apns-topic from it (src/helper/apns-payload.ts).

const ENVIRONMENT_SUFFIX = /\.(dev|prod)$/;
const VOIP_SUFFIX = ".voip";

/** `com.acme.phone.dev` → `com.acme.phone`; `com.acme.phone.voip.prod` → `com.acme.phone`. */
export function appleBundleOf(appId: string): string {
  const bundleOrTopic = appId.replace(ENVIRONMENT_SUFFIX, "");
  const voip =
    bundleOrTopic.length > VOIP_SUFFIX.length &&
    bundleOrTopic.substring(bundleOrTopic.length - VOIP_SUFFIX.length) === VOIP_SUFFIX;
  return voip ? bundleOrTopic.substring(0, bundleOrTopic.length - VOIP_SUFFIX.length) : bundleOrTopic;
}

/**
 * Whether an APNs topic (RFC 8599 pn-param without team id and service) is the app's: its bundle, its VoIP topic,
 * or the app id itself (an RFC 8599 app configured under its bundle id, which may end in `.dev` of its own).
 */
export function isTopicOfApp(topic: string, appId: string): boolean {
  const bundle = appleBundleOf(appId);
  return topic === appId || topic === bundle || topic === bundle + VOIP_SUFFIX;
}
