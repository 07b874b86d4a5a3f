// The parts of a direct upload: how a declared size is cut into S3 multipart parts, and whether the
// list a client completes with names each of them once. Pure: no I/O.

const MiB = 1024 * 1024;
/** S3's multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html) */
export const S3_MIN_PART_BYTES = 5 * MiB;
export const S3_MAX_PART_BYTES = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;
export const S3_MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;

export interface PartPlan {
  /** bytes of every part but the last (a whole number of MiB, ≥ 5 MiB) */
  partSizeBytes: number;
  /** 1–10,000 */
  partCount: number;
}

/**
 * Cuts `sizeBytes` (1 … 5 TiB, S3's largest object) into parts of `preferredPartBytes` (≥ 5 MiB),
 * or of the smallest whole number of MiB that keeps the count within S3's 10,000 parts. The last part
 * holds the rest (1 byte … a whole part). Throws RangeError for a size S3 cannot store in one object.
 */
export function planParts(sizeBytes: number, preferredPartBytes: number): PartPlan {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1 || sizeBytes > S3_MAX_OBJECT_BYTES) {
    throw new RangeError(`size must be 1 to ${S3_MAX_OBJECT_BYTES} bytes`);
  }
  const needed = Math.ceil(sizeBytes / S3_MAX_PARTS / MiB) * MiB;
  const partSizeBytes = Math.max(preferredPartBytes, needed, S3_MIN_PART_BYTES);
  return { partSizeBytes, partCount: Math.ceil(sizeBytes / partSizeBytes) };
}

export interface ListedPart {
  partNumber: number;
  etag: string;
}

/**
 * The client's parts in ascending order when they name each of 1…`partCount` exactly once; else a
 * sentence saying the first problem found (a number twice, one beyond the plan, one missing).
 * Part numbers in any order are accepted (S3 requires ascending ones: they are sorted here).
 */
export function orderParts(parts: readonly ListedPart[], partCount: number): { parts: ListedPart[] } | { problem: string } {
  const byNumber = new Map<number, ListedPart>();
  for (const part of parts) {
    if (part.partNumber > partCount) return { problem: `part ${part.partNumber} does not exist: the upload has ${partCount} part(s)` };
    if (byNumber.has(part.partNumber)) return { problem: `part ${part.partNumber} is listed twice` };
    byNumber.set(part.partNumber, part);
  }
  const ordered: ListedPart[] = [];
  for (let n = 1; n <= partCount; n++) {
    const part = byNumber.get(n);
    if (!part) return { problem: `part ${n} of ${partCount} is missing` };
    ordered.push(part);
  }
  return { parts: ordered };
}
