// tus's errors → the API's error table: every error @tus/server can throw at a client is a 4xx with a
// code of the table (its 501s for extensions not offered included), our faults 5xx; and the expiry
// setting is checked against the orphan sweep's grace at start-up.
import { ERRORS } from '@tus/server';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { AppError, errorTable } from '../../src/errors.ts';
import { tusPublicError, tusPublicErrorForStatus, UPLOAD_LOCKED } from '../../src/uploads/tus/errors.ts';

describe('tus errors', () => {
  it("maps every error of @tus/server's table to a code of ours, with that code's status", () => {
    const serverFaults = new Set(['UNKNOWN_ERROR', 'FILE_WRITE_ERROR']);
    for (const [name, err] of Object.entries(ERRORS)) {
      const mapped = tusPublicError(err);
      expect(mapped.status, name).toBe(errorTable[mapped.code].status);
      if (serverFaults.has(name)) expect(mapped.code, name).toBe('internal');
      else expect(mapped.status, `${name} → ${mapped.code}`).toBeLessThan(500);
    }
    expect(tusPublicError(ERRORS.INVALID_OFFSET).code).toBe('upload_offset_conflict');
    expect(tusPublicError(ERRORS.FILE_NO_LONGER_EXISTS).code).toBe('upload_expired');
    expect(tusPublicError(ERRORS.ERR_LOCK_TIMEOUT).code).toBe('upload_locked');
    expect(tusPublicError(UPLOAD_LOCKED)).toMatchObject({ status: 423, code: 'upload_locked' });
    expect(tusPublicError(ERRORS.MISSING_OFFSET)).toMatchObject({ status: 400, message: 'Upload-Offset header required' });
  });

  it('keeps AppErrors, and tells storage and database failures (503) from bugs (500)', () => {
    expect(tusPublicError(new AppError('invalid_callback_url', 'callbackUrl is bad'))).toEqual({ status: 400, code: 'invalid_callback_url', message: 'callbackUrl is bad' });
    expect(tusPublicError(Object.assign(new Error('slow down'), { $metadata: { httpStatusCode: 503 } })).code).toBe('storage_unavailable');
    expect(tusPublicError(Object.assign(new Error('terminating connection'), { code: '57P01' })).code).toBe('database_unavailable');
    expect(tusPublicError(new TypeError('x is undefined'))).toMatchObject({ status: 500, code: 'internal', message: errorTable.internal.message });
  });

  it('maps the answers @tus/server writes itself by status', () => {
    expect(tusPublicErrorForStatus(412, 'Tus-Resumable Required\n')).toMatchObject({ status: 412, code: 'tus_version_unsupported' });
    expect(tusPublicErrorForStatus(400, 'Invalid upload-offset\n')).toEqual({ status: 400, code: 'tus_invalid_request', message: 'Invalid upload-offset' });
    expect(tusPublicErrorForStatus(403, 'x')).toMatchObject({ status: 400, code: 'tus_invalid_request' });
    expect(tusPublicErrorForStatus(404, '')).toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('tus settings', () => {
  it('defaults to a day of expiry and a 5-minute sweep; refuses an expiry longer than the orphan grace', () => {
    expect(loadConfig({}).tus).toEqual({ expirySeconds: 86_400, sweepIntervalSeconds: 300 });
    expect(() => loadConfig({ TUS_EXPIRY_SECONDS: String(2 * 86_400) })).toThrow(/TUS_EXPIRY_SECONDS must be ≤ ORPHAN_GRACE_HOURS/);
    expect(loadConfig({ TUS_EXPIRY_SECONDS: String(2 * 86_400), ORPHAN_GRACE_HOURS: '48' }).tus.expirySeconds).toBe(172_800);
    expect(() => loadConfig({ TUS_SWEEP_INTERVAL_SECONDS: '0' })).toThrow(/TUS_SWEEP_INTERVAL_SECONDS/);
  });
});
