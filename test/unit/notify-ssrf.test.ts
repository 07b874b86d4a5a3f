import { describe, expect, it } from 'vitest';
import { checkUrl, isForbiddenAddress, literalHostIp, parseAllowedCidrs } from '../../src/notify/ssrf.ts';

const FORBIDDEN = [
  // IPv4
  '127.0.0.1', '127.255.255.254', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255',
  '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3',
  '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255', '192.0.2.10', '198.18.0.1', '203.0.113.5',
  // IPv6
  '::', '::1', 'fc00::1', 'fd12:3456:789a::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'ff02::1', 'ff0e::1',
  '::7f00:1', '2001:db8::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '3fff::1', '100::1',
  // IPv4 embedded in IPv6
  '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:a00:1', '::ffff:169.254.169.254', '::ffff:192.168.0.1',
  '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', '2002:c0a8:101::', '2002:a9fe:a9fe::1',
  // not an address at all: fail closed
  '', 'localhost', '127.1', '2130706433', 'example.com', '1.2.3', '::ffff:999.0.0.1',
];

const ALLOWED = [
  '1.1.1.1', '8.8.8.8', '93.184.216.34', '172.15.255.255', '172.32.0.1', '100.63.255.255', '100.128.0.1',
  '169.253.0.1', '223.255.255.255', '11.0.0.1', '192.169.0.1',
  '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e',
  '::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::8.8.8.8', '2002:808:808::1',
];

describe('isForbiddenAddress', () => {
  it.each(FORBIDDEN)('refuses %s', (ip) => {
    expect(isForbiddenAddress(ip)).toBe(true);
  });

  it.each(ALLOWED)('permits %s', (ip) => {
    expect(isForbiddenAddress(ip)).toBe(false);
  });

  it('accepts bracketed IPv6 as written in URLs', () => {
    expect(isForbiddenAddress('[::1]')).toBe(true);
    expect(isForbiddenAddress('[2606:4700:4700::1111]')).toBe(false);
  });

  it('lets the allow-list override the rules, and only for what it lists', () => {
    const allowed = parseAllowedCidrs('127.0.0.0/8, ::1/128, 10.1.2.3');
    expect(isForbiddenAddress('127.0.0.1', allowed)).toBe(false);
    expect(isForbiddenAddress('127.9.9.9', allowed)).toBe(false);
    expect(isForbiddenAddress('::1', allowed)).toBe(false);
    expect(isForbiddenAddress('::ffff:127.0.0.1', allowed)).toBe(false); // same host as 127.0.0.1
    expect(isForbiddenAddress('10.1.2.3', allowed)).toBe(false);
    expect(isForbiddenAddress('10.1.2.4', allowed)).toBe(true);
    expect(isForbiddenAddress('169.254.169.254', allowed)).toBe(true);
    expect(isForbiddenAddress('fe80::1', allowed)).toBe(true);
    expect(isForbiddenAddress('8.8.8.8', allowed)).toBe(false);
  });
});

describe('parseAllowedCidrs', () => {
  it('accepts CIDRs and single addresses, v4 and v6, ignoring blanks and spaces', () => {
    const list = parseAllowedCidrs(' 192.168.0.0/16 ,fd00::/8,, 10.0.0.7 ,::1');
    expect(list.check('192.168.44.1', 'ipv4')).toBe(true);
    expect(list.check('fd00::5', 'ipv6')).toBe(true);
    expect(list.check('10.0.0.7', 'ipv4')).toBe(true);
    expect(list.check('10.0.0.8', 'ipv4')).toBe(false);
    expect(list.check('::1', 'ipv6')).toBe(true);
  });

  it('returns an empty list for an empty spec', () => {
    expect(parseAllowedCidrs('').check('127.0.0.1', 'ipv4')).toBe(false);
  });

  it.each(['localhost', '10.0.0.0/33', '::1/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0/8',
    '10.0.0.0/ 8x', 'fe80::1%eth0', '1.2.3.4/abc'])('throws a clear error on "%s"', (spec) => {
    expect(() => parseAllowedCidrs(`127.0.0.1,${spec}`)).toThrow(/invalid allow-list entry/);
  });
});

describe('checkUrl', () => {
  it('accepts absolute http and https URLs', () => {
    const result = checkUrl('https://hooks.example.com:8443/in?x=1');
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.url.host).toBe('hooks.example.com:8443');
    expect(checkUrl('http://example.com').ok).toBe(true);
    expect(checkUrl('https://[2606:4700:4700::1111]/hook').ok).toBe(true);
    expect(checkUrl('https://8.8.8.8/hook').ok).toBe(true);
  });

  it.each([
    ['not a url', 'invalid_url'],
    ['/relative/path', 'invalid_url'],
    ['', 'invalid_url'],
    ['ftp://example.com/x', 'unsupported_scheme'],
    ['file:///etc/passwd', 'unsupported_scheme'],
    ['javascript:alert(1)', 'unsupported_scheme'],
    ['gopher://example.com/', 'unsupported_scheme'],
    ['https://user:pass@example.com/', 'credentials'],
    ['https://user@example.com/', 'credentials'],
    ['https://:pass@example.com/', 'credentials'],
  ])('rejects %s (%s)', (raw, reason) => {
    expect(checkUrl(raw)).toEqual({ ok: false, reason });
  });

  it('rejects URLs longer than 2048 characters', () => {
    const base = 'https://example.com/';
    expect(checkUrl(base + 'a'.repeat(2048 - base.length)).ok).toBe(true);
    expect(checkUrl(base + 'a'.repeat(2049 - base.length))).toEqual({ ok: false, reason: 'too_long' });
    // Percent-encoding can make the normalised URL longer than the input.
    expect(checkUrl(base + 'é'.repeat(400))).toEqual({ ok: false, reason: 'too_long' });
  });

  it.each([
    'http://127.0.0.1/', 'http://127.0.0.1:8080/x', 'http://10.0.0.1/', 'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://[::ffff:7f00:1]/', 'http://[fe80::1]/',
    'http://[64:ff9b::a9fe:a9fe]/', 'http://0.0.0.0/', 'http://0/',
    // WHATWG URL normalises these numeric forms to 127.0.0.1 — they must be judged as such.
    'http://2130706433/', 'http://0x7f000001/', 'http://127.1/', 'http://0177.0.0.1/', 'http://127.0.1/',
    'http://0x7f.1/', 'http://017700000001/', 'http://%31%32%37.0.0.1/', 'http://0xa9fea9fe/',
  ])('rejects literal internal address %s', (raw) => {
    expect(checkUrl(raw)).toEqual({ ok: false, reason: 'forbidden_address' });
  });

  it('normalised numeric hosts really are 127.0.0.1', () => {
    for (const raw of ['http://2130706433/', 'http://0x7f000001/', 'http://127.1/']) {
      expect(new URL(raw).hostname).toBe('127.0.0.1');
      expect(isForbiddenAddress(new URL(raw).hostname)).toBe(true);
    }
  });

  it('lets the allow-list admit literal internal addresses', () => {
    const allowed = parseAllowedCidrs('127.0.0.0/8,::1/128');
    expect(checkUrl('http://127.0.0.1:3000/hook', allowed).ok).toBe(true);
    expect(checkUrl('http://2130706433/', allowed).ok).toBe(true);
    expect(checkUrl('http://[::1]:3000/', allowed).ok).toBe(true);
    expect(checkUrl('http://10.0.0.1/', allowed)).toEqual({ ok: false, reason: 'forbidden_address' });
  });

  it('leaves DNS names to the connect-time check', () => {
    expect(checkUrl('http://localhost:3000/').ok).toBe(true);
    expect(checkUrl('http://internal.corp/').ok).toBe(true);
  });
});

describe('literalHostIp', () => {
  it('returns the address for IP hosts and null for names', () => {
    expect(literalHostIp(new URL('http://[::1]:80/'))).toBe('::1');
    expect(literalHostIp(new URL('http://0x7f000001/'))).toBe('127.0.0.1');
    expect(literalHostIp(new URL('http://example.com/'))).toBeNull();
  });
});
