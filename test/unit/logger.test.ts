import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/logger.ts';

describe('redactUrl', () => {
  it('hides live tokens and keeps the rest of the URL', () => {
    expect(redactUrl('/uploads/x/events?token=abc123&since=1')).toBe('/uploads/x/events?token=[redacted]&since=1');
    expect(redactUrl('/events?a=1&TOKEN=zzz')).toBe('/events?a=1&TOKEN=[redacted]');
    expect(redactUrl('/uploads?status=failed')).toBe('/uploads?status=failed');
  });
});
