import { describe, expect, it } from 'vitest';
import { orderParts, planParts, S3_MAX_OBJECT_BYTES, S3_MAX_PARTS, S3_MIN_PART_BYTES } from '../../src/uploads/direct-parts.ts';

const MiB = 1024 * 1024;

describe('planParts', () => {
  it('cuts a file into parts of the preferred size, the last holding the rest', () => {
    expect(planParts(1, 16 * MiB)).toEqual({ partSizeBytes: 16 * MiB, partCount: 1 });
    expect(planParts(16 * MiB, 16 * MiB)).toEqual({ partSizeBytes: 16 * MiB, partCount: 1 });
    expect(planParts(16 * MiB + 1, 16 * MiB)).toEqual({ partSizeBytes: 16 * MiB, partCount: 2 });
    expect(planParts(11 * MiB, 5 * MiB)).toEqual({ partSizeBytes: 5 * MiB, partCount: 3 });
  });

  it('never offers parts under S3\'s 5 MiB, and grows them (whole MiB) to stay within 10,000 parts', () => {
    expect(planParts(100, MiB).partSizeBytes).toBe(S3_MIN_PART_BYTES);
    const tenGiB = 10 * 1024 * MiB;
    expect(planParts(tenGiB, 16 * MiB)).toEqual({ partSizeBytes: 16 * MiB, partCount: 640 });
    for (const size of [200 * 1024 * MiB, 1024 * 1024 * MiB + 1, S3_MAX_OBJECT_BYTES]) {
      const plan = planParts(size, 5 * MiB);
      expect(plan.partCount).toBeLessThanOrEqual(S3_MAX_PARTS);
      expect(plan.partSizeBytes % MiB).toBe(0);
      expect(plan.partSizeBytes * plan.partCount).toBeGreaterThanOrEqual(size);
      expect(plan.partSizeBytes * (plan.partCount - 1)).toBeLessThan(size);
    }
  });

  it('refuses what S3 cannot store as one object', () => {
    for (const size of [0, -1, 1.5, S3_MAX_OBJECT_BYTES + 1, Number.NaN]) expect(() => planParts(size, 5 * MiB)).toThrow(RangeError);
  });
});

describe('orderParts', () => {
  const p = (partNumber: number) => ({ partNumber, etag: `"e${partNumber}"` });

  it('returns every part once in ascending order, whatever order they came in', () => {
    expect(orderParts([p(3), p(1), p(2)], 3)).toEqual({ parts: [p(1), p(2), p(3)] });
    expect(orderParts([p(1)], 1)).toEqual({ parts: [p(1)] });
  });

  it('names the first problem: a part missing, listed twice, or beyond the plan', () => {
    expect(orderParts([p(1), p(3)], 3)).toEqual({ problem: 'part 2 of 3 is missing' });
    expect(orderParts([], 2)).toEqual({ problem: 'part 1 of 2 is missing' });
    expect(orderParts([p(1), p(1), p(2)], 2)).toEqual({ problem: 'part 1 is listed twice' });
    expect(orderParts([p(1), p(2), p(3)], 2)).toEqual({ problem: 'part 3 does not exist: the upload has 2 part(s)' });
  });
});
