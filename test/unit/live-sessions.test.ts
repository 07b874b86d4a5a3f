// What one client's stream sends and skips, over a recording sink (no I/O).
import { describe, expect, it } from 'vitest';
import type { StatusBody } from '../../src/live/live.repository.ts';
import { FeedSession, UploadSession, type LiveSink } from '../../src/live/sessions.ts';

function recorder() {
  const sent: { event: string; id: string; data: any }[] = [];
  const ends: string[] = [];
  let heartbeats = 0;
  const sink: LiveSink = {
    send: (event, id, data) => sent.push({ event, id, data }),
    heartbeat: () => heartbeats++,
    end: (reason) => ends.push(reason),
  };
  return { sink, sent, ends, heartbeats: () => heartbeats };
}

let n = 0;
const nextId = () => String(++n);
const body = (status: string, attempt = 1, bytesProcessed = 0) => ({ uploadId: 'u', status, attempt, bytesProcessed }) as unknown as StatusBody;
const progress = (attempt: number, bytesProcessed: number) => ({
  kind: 'progress' as const,
  attempt,
  data: { uploadId: 'u', status: 'processing', rowsProcessed: 0, rowsFailed: 0, bytesProcessed, progress: 0, rowsPerSecond: 0 },
});
const events = (r: ReturnType<typeof recorder>) => r.sent.map((s) => `${s.event}:${s.data.status}:${s.data.bytesProcessed}`);

describe('UploadSession', () => {
  it('sends the snapshot first, then what arrived meanwhile, skipping what is not news', () => {
    const r = recorder();
    const session = new UploadSession(nextId);
    session.update({ kind: 'status', body: body('processing') }); // arrived while the snapshot was read
    session.update(progress(1, 10));
    session.start(r.sink, body('processing', 1, 5), false);
    session.update(progress(1, 8)); // older than what was sent
    session.update(progress(0, 50)); // an older attempt
    session.update({ kind: 'status', body: body('processing', 2) });
    session.update(progress(2, 1));
    session.update({ kind: 'status', body: body('completed', 2, 99) });
    session.update(progress(2, 2)); // after the end
    expect(events(r)).toEqual(['status:processing:5', 'progress:processing:10', 'status:processing:0', 'progress:processing:1', 'done:completed:99']);
    expect(r.ends).toEqual(['done']);
    expect(session.isEnded).toBe(true);
    const ids = r.sent.map((s) => Number(s.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('after the end: status then done for a fresh client, done alone for a resuming one', () => {
    const fresh = recorder();
    new UploadSession(nextId).start(fresh.sink, body('failed'), false);
    expect(fresh.sent.map((s) => s.event)).toEqual(['status', 'done']);
    const resumed = recorder();
    new UploadSession(nextId).start(resumed.sink, body('completed'), true);
    expect(resumed.sent.map((s) => s.event)).toEqual(['done']);
    expect(resumed.ends).toEqual(['done']);
  });

  it('tells its listeners once when it ends, at once if it already has', () => {
    const session = new UploadSession(nextId);
    let calls = 0;
    session.whenEnded(() => calls++);
    session.closed();
    session.closed();
    session.whenEnded(() => calls++);
    expect(calls).toBe(2);
    const r = recorder();
    session.start(r.sink, body('processing'), false); // the client left before the snapshot
    expect(r.sent).toEqual([]);
  });

  it('ends the stream on shutdown, even before it started', () => {
    const r = recorder();
    const session = new UploadSession(nextId);
    session.shutdown();
    session.start(r.sink, body('processing'), false);
    expect(r.ends).toEqual(['shutdown']);
    expect(r.sent).toEqual([]);
  });
});

describe('access ended (revoke)', () => {
  it('sends one last `error` event with the stable code, ends the transport with it, and sends nothing after', () => {
    const r = recorder();
    const session = new UploadSession(nextId);
    session.start(r.sink, body('processing'), false);
    session.revoke('key_revoked');
    session.revoke('token_expired'); // once only
    session.update({ kind: 'status', body: body('completed') });
    session.heartbeat();
    expect(r.sent.map((s) => s.event)).toEqual(['status', 'error']);
    expect(r.sent[1]!.data).toEqual({ error: { code: 'key_revoked', message: expect.stringMatching(/revoked/) } });
    expect(r.ends).toEqual(['key_revoked']);
    expect(r.heartbeats()).toBe(0);
    expect(session.endReason).toBe('key_revoked');
  });

  it('revoked before its transport was ready: says why as soon as it is', () => {
    const r = recorder();
    const session = new FeedSession(nextId);
    let ended = 0;
    session.whenEnded(() => ended++);
    session.revoke('token_expired');
    expect(ended).toBe(1);
    session.start(r.sink);
    expect(r.sent.map((s) => `${s.event}:${s.data.error.code}`)).toEqual(['error:token_expired']);
    expect(r.ends).toEqual(['token_expired']);
  });

  it('records how each session ended', () => {
    const done = new UploadSession(nextId);
    done.start(recorder().sink, body('completed'), false);
    const gone = new FeedSession(nextId);
    gone.closed();
    const shut = new FeedSession(nextId);
    shut.shutdown();
    shut.revoke('key_revoked'); // too late: already ended
    expect([done.endReason, gone.endReason, shut.endReason, new FeedSession(nextId).endReason]).toEqual([
      'done',
      'client_gone',
      'shutdown',
      null,
    ]);
  });
});

describe('FeedSession', () => {
  it('sends every event as `upload`, buffers until started, and heartbeats while open', () => {
    const r = recorder();
    const session = new FeedSession(nextId);
    session.feed({ uploadId: 'a' } as never);
    session.start(r.sink);
    session.feed({ uploadId: 'b' } as never);
    session.heartbeat();
    session.closed();
    session.feed({ uploadId: 'c' } as never);
    session.heartbeat();
    expect(r.sent.map((s) => `${s.event}:${s.data.uploadId}`)).toEqual(['upload:a', 'upload:b']);
    expect(r.heartbeats()).toBe(1);
  });
});
