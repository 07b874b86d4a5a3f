// The SHA-256 of a tus upload, carried from PATCH to PATCH while its bytes pass through this process in
// order, so that completing it need not read the whole object back from storage to hash it. Node's hash
// state cannot be saved or sent elsewhere, so this only holds within one process: whenever a PATCH
// does not continue exactly where the kept hash ends (another process took bytes in between, a cut
// kept fewer bytes than were hashed, the process restarted), the upload has no hash here and its
// finish reads the object back (src/uploads/tus/finish.ts), as before.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A hash over bytes [0, offset) of an upload. */
interface Running {
  hash: Hash;
  offset: number;
}

/** The SHA-256 of a whole upload, when every byte of it was hashed here. */
export interface KnownDigest {
  sha256: string;
  bytes: number;
}

/** The bytes of one write on their way to the store, and what to do once the store answered. */
export interface HashingWrite {
  stream: Transform;
  /** the store kept the upload up to `newOffset`: the hash is kept if that is exactly what passed here */
  settle(newOffset: number): void;
}

/**
 * Hashes of uploads in progress in this process, by store id. At most `maxUploads` are kept (the
 * oldest dropped first: an abandoned upload's hash just goes, its upload would be read back).
 */
export class RunningHashes {
  private readonly running = new Map<string, Running>();

  constructor(private readonly maxUploads = 1000) {}

  /**
   * A pass-through for the bytes written to upload `id` at `offset`: hashed when they start the
   * upload (offset 0) or continue the hash kept here. While the write runs no hash of `id` is kept,
   * so a concurrent write of the same upload (refused by the lock anyway) hashes nothing.
   */
  write(id: string, offset: number): HashingWrite {
    const kept = this.running.get(id);
    this.running.delete(id);
    const state: Running | null = offset === 0 ? { hash: createHash('sha256'), offset: 0 } : kept?.offset === offset ? kept : null;
    let passed = 0;
    const stream = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        state?.hash.update(chunk);
        passed += chunk.length;
        cb(null, chunk);
      },
    });
    return {
      stream,
      settle: (newOffset) => {
        if (!state || newOffset !== offset + passed) return;
        state.offset = newOffset;
        this.running.set(id, state);
        if (this.running.size > this.maxUploads) this.running.delete(this.running.keys().next().value!);
      },
    };
  }

  /** The digest of upload `id` if all `size` of its bytes were hashed here (the hash is then forgotten). */
  take(id: string, size: number | undefined): KnownDigest | null {
    const state = this.running.get(id);
    this.running.delete(id);
    if (!state || size === undefined || state.offset !== size) return null;
    return { sha256: state.hash.digest('hex'), bytes: size };
  }
}
