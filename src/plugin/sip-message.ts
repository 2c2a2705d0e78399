// Small readers and writers around KSR for the message being routed, and the $var/$avp hand-back to cfg.

/** A PV's value as a string ("" when unset). */
export function pvString(name: string): string {
  const value = KSR.pv.get(name);
  return value === null || value === undefined ? "" : String(value);
}

export function setVar(name: string, value: string | number): void {
  if (typeof value === "number") KSR.pv.seti("$var(" + name + ")", value);
  else KSR.pv.sets("$var(" + name + ")", value);
}

export function header(name: string): string | null {
  const value = KSR.hdr.get(name);
  return typeof value === "string" ? value : null;
}

/** Device records and held calls are keyed by `user@domain`, lower-cased (usrloc with use_domain=1). */
export function aorOf(user: string, domain: string): string {
  return (user + "@" + domain).toLowerCase();
}

/** The SIP URI a device reaches this proxy at: the advertised address of the socket the request came in on. */
export function receivingProxyUri(): string {
  return "sip:" + pvString("$RAi") + ":" + pvString("$RAp") + ";transport=" + pvString("$pr");
}
