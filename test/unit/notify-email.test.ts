// The email channel's pure parts: the mailto: rule and the mail's text.
import { describe, expect, it } from 'vitest';
import { composeMail, mailtoAddress } from '../../src/notify/channels/email.ts';

describe('email channel', () => {
  it('accepts mailto: with one address only', () => {
    expect(mailtoAddress('mailto:ops@example.com')).toBe('ops@example.com');
    expect(mailtoAddress(' mailto:Ops.Team+x@mail.example.co.uk ')).toBe('Ops.Team+x@mail.example.co.uk');
    for (const url of ['ops@example.com', 'mailto:', 'mailto:a@example.com,b@example.com', 'mailto:a@example.com?cc=b@example.com', 'mailto:a@localhost', 'mailto:a b@example.com', 'https://example.com']) {
      expect(mailtoAddress(url), url).toBeNull();
    }
  });

  it('writes a subject naming the event and the file, and the figures in the body', () => {
    const completed = composeMail({ type: 'upload.completed', uploadId: 'u1', status: 'completed', rowsProcessed: 7, rowsFailed: 1 }, 'a.csv', '/uploads/u1');
    expect(completed.subject).toBe('Upload a.csv completed: 7 rows');
    expect(completed.text).toContain('Rows: 7 rows loaded, 1 rejected\n');
    expect(completed.text).toContain('Status: /uploads/u1\n');
    const failed = composeMail({ type: 'upload.failed', uploadId: 'u2', status: 'failed', error: 'too many', errorCode: 'too_many_errors' }, null, null);
    expect(failed.subject).toBe('Upload u2 failed: too_many_errors'); // the upload is purged: named by its id
    expect(failed.text).toContain('Error: too many (too_many_errors)');
  });

});
