// The pure rules of live events: payload narrowing, progress fraction, throttling and rate, SSE frames.
import { describe, expect, it } from 'vitest';
import { parseUploadEvent, progressFraction, ProgressTracker, sseFrame, type UploadEvent } from '../../src/live/events.ts';

const base: UploadEvent = {
  uploadId: '0b7f2c4e-1111-4a2b-a333-123456789abc',
  tenantId: '1b7f2c4e-1111-4a2b-a333-123456789abc',
  status: 'processing',
  attempt: 1,
  rowsProcessed: 0,
  rowsFailed: 0,
  bytesProcessed: 0,
  sizeBytes: 1000,
  error: null,
  at: '2025-01-01T00:00:00.000Z',
};
const at = (ms: number) => new Date(Date.parse(base.at) + ms).toISOString();
const tick = (ms: number, rows: number, extra: Partial<UploadEvent> = {}): UploadEvent => ({
  ...base,
  rowsProcessed: rows,
  bytesProcessed: rows,
  at: at(ms),
  ...extra,
});

describe('parseUploadEvent', () => {
  it('accepts the NOTIFY payload and narrows error', () => {
    expect(parseUploadEvent(JSON.stringify(base))).toEqual(base);
    const failed = { ...base, status: 'failed', error: { code: 'budget', message: 'too many' } };
    expect(parseUploadEvent(JSON.stringify(failed))?.error).toEqual({ code: 'budget', message: 'too many' });
    expect(parseUploadEvent(JSON.stringify({ ...failed, error: { message: 'm' } }))?.error).toEqual({ code: null, message: 'm' });
  });

  it('rejects anything else', () => {
    for (const bad of [undefined, '', 'nope', 'null', '[]', '{"uploadId":1}', JSON.stringify({ ...base, attempt: '1' })]) {
      expect(parseUploadEvent(bad)).toBeNull();
    }
  });
});

describe('progressFraction', () => {
  it('is bytes over size, 1 when completed, 0 for an empty file', () => {
    expect(progressFraction('processing', 250, 1000)).toBe(0.25);
    expect(progressFraction('processing', 1, 3)).toBe(0.3333);
    expect(progressFraction('processing', 2000, 1000)).toBe(1);
    expect(progressFraction('completed', 10, 1000)).toBe(1);
    expect(progressFraction('uploaded', 0, 0)).toBe(0);
  });
});

describe('ProgressTracker', () => {
  it('passes a status change at once and progress at most once per interval, rated between passed ticks', () => {
    const tracker = new ProgressTracker(900);
    expect(tracker.classify(tick(0, 0), 0)).toEqual({ statusChanged: true, progressDue: false, rowsPerSecond: 0 });
    expect(tracker.classify(tick(100, 100), 0).progressDue).toBe(false);
    expect(tracker.classify(tick(500, 500), 0).progressDue).toBe(false);
    expect(tracker.classify(tick(1000, 2000), 0)).toEqual({ statusChanged: false, progressDue: true, rowsPerSecond: 2000 });
    expect(tracker.classify(tick(1800, 3000), 0).progressDue).toBe(false);
    expect(tracker.classify(tick(2000, 5000), 0)).toEqual({ statusChanged: false, progressDue: true, rowsPerSecond: 3000 });
    expect(tracker.rateOf(base.uploadId)).toBe(3000);
    const done = tracker.classify(tick(2100, 5000, { status: 'completed' }), 0);
    expect(done).toEqual({ statusChanged: true, progressDue: false, rowsPerSecond: 0 });
    expect(tracker.rateOf(base.uploadId)).toBe(0);
    expect(tracker.classify(tick(2200, 5000, { status: 'completed' }), 0).statusChanged).toBe(false);
  });

  it('counts failed rows in the rate, restarts with a new attempt, and ignores an older one', () => {
    const tracker = new ProgressTracker(900);
    tracker.classify(tick(0, 0), 0);
    expect(tracker.classify(tick(1000, 500, { rowsFailed: 500 }), 0).rowsPerSecond).toBe(1000);
    expect(tracker.classify(tick(1100, 0, { attempt: 2 }), 0).statusChanged).toBe(true);
    expect(tracker.classify(tick(2100, 900, { attempt: 1 }), 0)).toEqual({ statusChanged: false, progressDue: false, rowsPerSecond: 0 });
    expect(tracker.classify(tick(2100, 900, { attempt: 2 }), 0).rowsPerSecond).toBe(900);
  });

  it('passes the counts of a load first seen mid-way (a process started late)', () => {
    const tracker = new ProgressTracker(900);
    expect(tracker.classify(tick(0, 100), 0)).toEqual({ statusChanged: true, progressDue: true, rowsPerSecond: 0 });
  });

  it('forgets uploads not heard of for a while', () => {
    const tracker = new ProgressTracker(900);
    tracker.classify(tick(0, 0), 1000);
    tracker.prune(5000, 10_000);
    expect(tracker.size).toBe(1);
    tracker.prune(20_000, 10_000);
    expect(tracker.size).toBe(0);
  });
});

describe('sseFrame', () => {
  it('writes id, event and one line of JSON data, ended by a blank line', () => {
    expect(sseFrame('status', '7', { a: 'x\ny' })).toBe('id: 7\nevent: status\ndata: {"a":"x\\ny"}\n\n');
  });
});
