// Is an address inside one of a list of CIDRs? Pure and ES5-safe (the plugin and config.ts use it): decides
// which sources may send Kazoo's X-KAZOO-PUSHER-* headers (a client must not aim pushes at any token it likes).

function ipv4ToNumber(ip: string): number | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]) || Number(parts[i]) > 255) return null;
    value = value * 256 + Number(parts[i]);
  }
  return value;
}

/** Expands an IPv6 address (also `::ffff:a.b.c.d`) into 8 16-bit groups, or null. */
function ipv6Groups(ip: string): number[] | null {
  let text = ip.replace(/^\[|\]$/g, "").toLowerCase();
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToNumber(v4[2]);
    if (n === null) return null;
    text = v4[1] + Math.floor(n / 65536).toString(16) + ":" + (n % 65536).toString(16);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const zeros: string[] = [];
  for (let i = 0; halves.length === 2 && i < missing; i++) zeros.push("0");
  const all = head.concat(zeros, tail);
  const groups: number[] = [];
  for (let i = 0; i < all.length; i++) {
    if (!/^[0-9a-f]{1,4}$/.test(all[i])) return null;
    groups.push(parseInt(all[i], 16));
  }
  return groups.length === 8 ? groups : null;
}

function inCidr(ip: string, cidr: string): boolean {
  const slash = cidr.indexOf("/");
  const network = slash < 0 ? cidr : cidr.substring(0, slash);
  const v4 = ipv4ToNumber(network);
  if (v4 !== null) {
    const bits = slash < 0 ? 32 : Number(cidr.substring(slash + 1));
    const address = ipv4ToNumber(ip);
    if (address === null || !(bits >= 0 && bits <= 32)) return false;
    const size = Math.pow(2, 32 - bits);
    return Math.floor(address / size) === Math.floor(v4 / size);
  }
  const networkGroups = ipv6Groups(network);
  const addressGroups = ipv6Groups(ip);
  const prefix = slash < 0 ? 128 : Number(cidr.substring(slash + 1));
  if (!networkGroups || !addressGroups || !(prefix >= 0 && prefix <= 128)) return false;
  for (let bit = 0; bit < prefix; bit += 16) {
    const take = Math.min(16, prefix - bit);
    const shift = Math.pow(2, 16 - take);
    if (Math.floor(networkGroups[bit / 16] / shift) !== Math.floor(addressGroups[bit / 16] / shift)) return false;
  }
  return true;
}

export function isValidCidr(cidr: string): boolean {
  const slash = cidr.indexOf("/");
  const network = slash < 0 ? cidr : cidr.substring(0, slash);
  const bits = slash < 0 ? null : cidr.substring(slash + 1);
  if (bits !== null && !/^\d{1,3}$/.test(bits)) return false;
  if (ipv4ToNumber(network) !== null) return bits === null || Number(bits) <= 32;
  return ipv6Groups(network) !== null && (bits === null || Number(bits) <= 128);
}

export function isInCidrList(ip: string, cidrs: string[]): boolean {
  for (let i = 0; i < cidrs.length; i++) if (inCidr(ip, cidrs[i])) return true;
  return false;
}
