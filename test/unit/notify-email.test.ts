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

  it('says a dry run loaded nothing, and how many rows a removal took back', () => {
    const dry = composeMail({ type: 'upload.completed', uploadId: 'u3', status: 'completed', rowsProcessed: 5, rowsFailed: 0, dryRun: true }, 'b.csv', null);
    expect(dry.text).toContain('Rows: 5 rows valid (dry run: none loaded), 0 rejected\n');
    const removed = composeMail({ type: 'upload.rows_removed', uploadId: 'u4', rowsRemoved: 12 }, 'c.csv', null);
    expect(removed.subject).toBe('Upload c.csv: 12 rows removed');
    expect(removed.text).toContain('Rows removed: 12\n');
    expect(removed.text).not.toContain('Status:');
  });

});
