// The client's progress renderer: formatting, line fitting, rate, and TTY vs pipe behaviour.
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatPercent,
  ProgressLine,
  RateMeter,
  renderBar,
  renderLine,
  type ProgressSink,
} from '../../src/cli/client/progress.ts';

function sink(isTTY: boolean, columns = 80): ProgressSink & { text: string } {
  return {
    isTTY,
    columns,
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}

describe('formatting', () => {
  it('bytes in binary units, three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(30.65134099616858)).toBe('31 B'); // a slow rate: B/s, no raw float
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(37.4 * 1024 * 1024)).toBe('37.4 MiB');
    expect(formatBytes(2 * 1024 ** 3)).toBe('2.00 GiB');
    expect(formatBytes(512 * 1024 ** 3)).toBe('512 GiB');
  });

  it('counts, durations and percentages', () => {
    expect(formatCount(1234567.4)).toBe('1,234,567');
    expect(formatDuration(26)).toBe('26 ms');
    expect(formatDuration(8_240)).toBe('8.2 s');
    expect(formatDuration(125_000)).toBe('2m 05s');
    expect(formatDuration(3_725_000)).toBe('1h 02m 05s');
    expect(formatPercent(0.4567)).toBe('45.7%');
    expect(formatPercent(1.5)).toBe('100.0%');
    expect(formatPercent(Number.NaN)).toBe('0.0%');
  });

  it('a bar is exactly as wide as asked and full only at 100%', () => {
    expect(renderBar(0, 10)).toBe('░'.repeat(10));
    expect(renderBar(0.5, 10)).toBe('█'.repeat(5) + '░'.repeat(5));
    expect(renderBar(0.999, 10)).toBe('█'.repeat(9) + '░');
    expect(renderBar(1, 10)).toBe('█'.repeat(10));
    expect(renderBar(-1, 4)).toBe('░░░░');
  });
});

describe('renderLine', () => {
  const line = { label: 'upload', fraction: 0.5, details: ['512 MiB / 1.00 GiB', '85.3 MiB/s', 'ETA 6.0 s'] };

  it('fits the terminal: never wraps, drops details from the end when narrow', () => {
    for (const columns of [200, 80, 60, 40, 30, 10]) {
      expect(renderLine(line, columns).length).toBeLessThan(Math.max(columns, 21));
    }
    expect(renderLine(line, 120)).toContain('ETA 6.0 s');
    const narrow = renderLine(line, 50);
    expect(narrow).toContain('512 MiB / 1.00 GiB');
    expect(narrow).not.toContain('ETA');
    expect(renderLine(line, 80)).toMatch(/^upload █+░+  50\.0%  512 MiB/);
  });

  it('no bar when the total is unknown', () => {
    expect(renderLine({ label: 'queued', fraction: null, details: ['waiting for a worker'] }, 80)).toBe('queued  waiting for a worker');
  });
});

describe('RateMeter', () => {
  it('is silent until samples span a moment, then averages over its window', () => {
    const m = new RateMeter(1000);
    m.add(0, 0);
    expect(m.perSecond()).toBeNull();
    m.add(100, 100);
    expect(m.perSecond()).toBeNull();
    m.add(500, 500);
    expect(m.perSecond()).toBe(1000);
    // old samples leave the window: the rate follows the recent speed
    m.add(2000, 600);
    m.add(2500, 700);
    expect(m.perSecond()).toBeCloseTo(200, 5);
  });
});

describe('ProgressLine', () => {
  it('on a TTY: redraws in place with \\r, throttled, and ends with a newline', () => {
    let now = 0;
    const out = sink(true);
    const p = new ProgressLine(out, { redrawMs: 100, now: () => now });
    p.update({ label: 'rows  ', fraction: 0.1, details: ['1 rows'] });
    now = 50;
    p.update({ label: 'rows  ', fraction: 0.2, details: ['2 rows'] }); // throttled
    expect(out.text.split('\r')).toHaveLength(2);
    now = 150;
    p.update({ label: 'rows  ', fraction: 0.3, details: ['3 rows'] });
    expect(out.text.split('\r')).toHaveLength(3);
    p.done({ label: 'rows  ', fraction: 1, details: ['9 rows'] });
    expect(out.text.endsWith('9 rows\x1b[K\n')).toBe(true);
    expect(out.text).not.toContain('2 rows');
    const before = out.text;
    p.update({ label: 'rows  ', fraction: 1, details: ['late'] });
    p.done();
    expect(out.text).toBe(before);
  });

  it('on a TTY: breakLine ends a drawn line once, and drawing may continue', () => {
    let now = 0;
    const out = sink(true);
    const p = new ProgressLine(out, { now: () => now });
    p.breakLine();
    expect(out.text).toBe('');
    p.update({ label: 'x', fraction: 0.5, details: [] });
    p.breakLine();
    p.breakLine();
    expect(out.text.match(/\n/g)).toHaveLength(1);
    now = 1000;
    p.update({ label: 'x', fraction: 0.6, details: [] });
    p.done();
    expect(out.text.match(/\n/g)).toHaveLength(2);
  });

  it('piped: no \\r and no bar, only a plain line per milestone passed', () => {
    const out = sink(false);
    const p = new ProgressLine(out, { milestones: [0.25, 0.5, 0.75] });
    for (let i = 0; i <= 100; i++) p.update({ label: 'upload', fraction: i / 100, details: [] }, () => `at ${i}%`);
    p.update({ label: 'upload', fraction: 1, details: [] }, () => 'again');
    p.done({ label: 'upload', fraction: 1, details: [] });
    expect(out.text).toBe('at 25%\nat 50%\nat 75%\n');
  });

  it('piped: a jump over several milestones prints one line', () => {
    const out = sink(false);
    const p = new ProgressLine(out);
    p.update({ label: 'rows', fraction: 0.9, details: [] }, () => 'jumped');
    expect(out.text).toBe('jumped\n');
  });
});
