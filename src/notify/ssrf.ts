// Address rules that keep webhooks from reaching internal networks (SSRF). Pure: callers pass in the
// address that is about to be connected to; deliver.ts applies these rules at connect time.
import { BlockList, isIP } from 'node:net';

/** Anything with BlockList's `check` — the allow-list produced by parseAllowedCidrs. */
export interface AddressList {
  check(address: string, type?: 'ipv4' | 'ipv6'): boolean;
}

export type UrlRejection =
  | 'invalid_url'
  | 'too_long'
  | 'unsupported_scheme'
  | 'credentials'
  | 'missing_host'
  | 'forbidden_address';

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: UrlRejection };

export const MAX_URL_LENGTH = 2048;

/** Why a URL was refused, as the end of a sentence that begins with the field's name. */
export const URL_REJECTION_TEXT: Readonly<Record<UrlRejection, string>> = {
  invalid_url: 'is not a valid absolute URL',
  too_long: `is longer than ${MAX_URL_LENGTH} characters`,
  unsupported_scheme: 'must use http or https',
  credentials: 'must not contain a user name or password',
  missing_host: 'has no host',
  forbidden_address: 'points at a private, loopback or link-local address',
};

/** IPv4 ranges that are not globally reachable (IANA special-purpose registry, the risky parts). */
const FORBIDDEN_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches localhost on Linux
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, incl. cloud metadata 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, incl. broadcast 255.255.255.255
];

const forbiddenV4 = new BlockList();
for (const [net, prefix] of FORBIDDEN_V4) forbiddenV4.addSubnet(net, prefix, 'ipv4');

/** One entry of an allow-list: a network (a single address is its own /32 or /128). */
export interface CidrEntry {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses a comma-separated allow-list of CIDRs or single IPs (v4 or v6), e.g. "127.0.0.0/8,::1/128",
 * ignoring blanks and spaces. Addresses in it are permitted even if the rules below would refuse them
 * (local development, tests, a known internal receiver). Throws an Error naming the first malformed
 * entry; src/config.ts calls this at start-up, so a typo stops the start instead of a later request.
 */
export function parseCidrList(spec: string): CidrEntry[] {
  const entries: CidrEntry[] = [];
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const version = isIP(address);
    if (version === 0 || address.includes('%')) {
      throw new Error(`invalid allow-list entry "${entry}": not an IPv4/IPv6 address or CIDR`);
    }
    const family = version === 4 ? 'ipv4' : 'ipv6';
    const maxPrefix = version === 4 ? 32 : 128;
    if (slash === -1) {
      entries.push({ address, prefix: maxPrefix, family });
      continue;
    }
    const prefixText = entry.slice(slash + 1);
    const prefix = Number(prefixText);
    if (!/^\d{1,3}$/.test(prefixText) || prefix > maxPrefix) {
      throw new Error(`invalid allow-list entry "${entry}": prefix length must be 0–${maxPrefix}`);
    }
    entries.push({ address, prefix, family });
  }
  return entries;
}

/** The allow-list of parsed entries (config.webhook.allowedCidrs), in the form checkUrl and deliver take. */
export function allowListOf(entries: readonly CidrEntry[]): BlockList {
  const list = new BlockList();
  for (const { address, prefix, family } of entries) list.addSubnet(address, prefix, family);
  return list;
}

/** parseCidrList then allowListOf, in one step (tests, tools). Throws as parseCidrList. */
export function parseAllowedCidrs(spec: string): BlockList {
  return allowListOf(parseCidrList(spec));
}

/** The eight 16-bit words of a valid IPv6 address (zone id dropped), or null if it does not parse. */
function ipv6Words(ip: string): number[] | null {
  let text = ip.split('%')[0] ?? '';
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two words: rewrite it as hex.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const octets = tail.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null;
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const gap = halves.length === 2 ? 8 - head.length - rest.length : 0;
  if (gap < 0) return null;
  const words = [...head, ...new Array<number>(gap).fill(0), ...rest];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

function v4FromWords(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

function isForbiddenV6(words: number[]): boolean {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = words;
  // Forms that carry an IPv4 address: judge by the IPv4 address they lead to.
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0xffff) {
    return forbiddenV4.check(v4FromWords(w6, w7), 'ipv4'); // IPv4-mapped ::ffff:a.b.c.d
  }
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) {
    return forbiddenV4.check(v4FromWords(w6, w7), 'ipv4'); // NAT64 well-known prefix 64:ff9b::/96
  }
  if (w0 === 0x2002) return forbiddenV4.check(v4FromWords(w1, w2), 'ipv4'); // 6to4 2002:AABB:CCDD::/48
  // Only global unicast 2000::/3 is reachable. This one rule refuses ::, ::1, IPv4-compatible ::/96,
  // fc00::/7 (ULA), fe80::/10 (link-local), fec0::/10, ff00::/8 (multicast), 100::/64 and the rest.
  if ((w0 & 0xe000) !== 0x2000) return true;
  if (w0 === 0x2001 && w1 === 0) return true; // Teredo: tunnels to an obfuscated IPv4 we don't decode
  if (w0 === 0x2001 && w1 === 0xdb8) return true; // documentation
  if (w0 === 0x3fff && w1 < 0x1000) return true; // documentation 3fff::/20
  return false;
}

/**
 * True when a webhook must not connect to `ip` (a literal IPv4/IPv6 address, as resolved by DNS or
 * written in the URL). Unparseable input is refused: fail closed. `allowed` entries always win.
 */
export function isForbiddenAddress(ip: string, allowed?: AddressList): boolean {
  const address = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const version = isIP(address);
  if (version === 0) return true;
  const bare = address.split('%')[0] ?? address;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (allowed !== undefined) {
    try {
      if (allowed.check(bare, family)) return false;
    } catch {
      // An address BlockList cannot evaluate is simply not allowed.
    }
  }
  if (version === 4) return forbiddenV4.check(bare, 'ipv4');
  const words = ipv6Words(bare);
  return words === null ? true : isForbiddenV6(words);
}

/** The IP address a URL's host names literally (brackets removed), or null when the host is a DNS name. */
export function literalHostIp(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) === 0 ? null : host;
}

/**
 * Validates a callback URL: absolute http(s), ≤ 2048 chars, no user:password, and — when the host is
 * a literal IP — not a forbidden address. WHATWG URL parsing has already normalised numeric hosts
 * (2130706433, 0x7f000001, 127.1 → 127.0.0.1), so those are judged as the address they really are.
 * DNS names cannot be judged here; deliver.ts checks the resolved address at connect time.
 */
export function checkUrl(raw: string, allowed?: AddressList): UrlCheck {
  if (raw.length > MAX_URL_LENGTH) return { ok: false, reason: 'too_long' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'invalid_url' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'unsupported_scheme' };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'credentials' };
  if (url.hostname === '') return { ok: false, reason: 'missing_host' };
  if (url.href.length > MAX_URL_LENGTH) return { ok: false, reason: 'too_long' };
  const ip = literalHostIp(url);
  if (ip !== null && isForbiddenAddress(ip, allowed)) return { ok: false, reason: 'forbidden_address' };
  return { ok: true, url };
}
