// busboy's code-less errors named once: a malformed body and a cut one each get their stable code.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { asMultipartError, boundaryProblem, multipartErrorCode } from '../../src/uploads/multipart-errors.ts';

describe('multipart errors', () => {
  it.each([
    ['Multipart: Boundary not found', 'malformed_multipart'],
    ['Unsupported Content-Type.', 'malformed_multipart'],
    ['The needle cannot have a length bigger than 256.', 'malformed_multipart'],
    ['Unexpected end of multipart data', 'upload_aborted'],
    ['Part terminated early due to unexpected end of multipart data', 'upload_aborted'],
  ])('%s → %s', (message, code) => {
    expect(multipartErrorCode(new Error(message))).toBe(code);
    const mapped = asMultipartError(new Error(message));
    expect(mapped).toBeInstanceOf(AppError);
    expect((mapped as AppError).code).toBe(code);
  });

  it('a client that closed the connection mid-body is upload_aborted', () => {
    expect(multipartErrorCode(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))).toBe('upload_aborted');
  });

  it('leaves everything else alone: our errors, coded errors, unknown messages', () => {
    const ours = new AppError('file_too_large');
    expect(asMultipartError(ours)).toBe(ours);
    expect(multipartErrorCode(Object.assign(new Error('Unexpected end of multipart data'), { code: 'X' }))).toBeNull();
    expect(multipartErrorCode(new Error('connection refused'))).toBeNull();
    expect(multipartErrorCode('a string')).toBeNull();
  });

  it.each([
    ['multipart/form-data', 'the Content-Type has no boundary parameter'],
    ['multipart/form-data; boundary=', 'the boundary is empty'],
    ['multipart/form-data; boundary=""', 'the boundary is empty'],
    [`multipart/form-data; boundary=${'b'.repeat(71)}`, 'the boundary is longer than 70 characters (RFC 2046)'],
    [undefined, 'the Content-Type has no boundary parameter'],
  ])('boundary of %s: %s', (contentType, problem) => {
    expect(boundaryProblem(contentType)).toBe(problem);
  });

  it.each(['multipart/form-data; boundary=abc', 'multipart/form-data; charset=utf-8; BOUNDARY="a b"', `multipart/form-data; boundary=${'b'.repeat(70)}`])(
    'a usable boundary: %s',
    (contentType) => expect(boundaryProblem(contentType)).toBeNull(),
  );
});
