// The embedded S3 server (s3rver behind our wrapper) answers ListParts and ListMultipartUploads as S3
// does — what @tus/s3-store needs to resume an upload and to expire abandoned ones — checked against
// multipart uploads made by the AWS SDK.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';

const BUCKET = 'stream-api';
const MiB = 1024 * 1024;
let dir: string;
let s3: EmbeddedS3Handle;
let client: S3Client;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-s3-list-'));
  s3 = await startEmbeddedS3({ dataDir: dir, port: 0, bucket: BUCKET });
  client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Starts an upload of `key` and sends parts of these sizes (bytes), each filled with its own letter. */
async function startUpload(key: string, sizes: number[]) {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const etags: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const body = Buffer.alloc(size, String.fromCharCode(97 + i));
    const res = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: body }));
    etags.push(res.ETag!);
  }
  return { uploadId: UploadId!, etags };
}

function errorName(err: unknown): string | undefined {
  return err instanceof S3ServiceException ? err.name : undefined;
}

describe('embedded S3: ListParts', () => {
  it('lists the parts the SDK uploaded: numbers, sizes and the ETags UploadPart answered, in order', async () => {
    const key = 'uploads/t/list.csv';
    const sizes = [5 * MiB, 5 * MiB + 17, 1234];
    const { uploadId, etags } = await startUpload(key, sizes);
    const res = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    expect(res.IsTruncated).toBe(false);
    expect(res.UploadId).toBe(uploadId);
    expect(res.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual(sizes.map((size, i) => [i + 1, size, etags[i]]));
    for (const part of res.Parts ?? []) expect(part.LastModified).toBeInstanceOf(Date);

    // The listed parts complete the upload into exactly the bytes sent.
    const parts = res.Parts!.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag }));
    await client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    expect(bytes.length).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(bytes[5 * MiB]).toBe('b'.charCodeAt(0));
    expect(bytes.at(-1)).toBe('c'.charCodeAt(0));

    // Completed: the upload is gone, as on S3.
    const after = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })).catch((e: unknown) => e);
    expect(errorName(after)).toBe('NoSuchUpload');
  });

  it('pages by part-number-marker and max-parts', async () => {
    const key = 'uploads/t/paged.csv';
    const { uploadId } = await startUpload(key, [10, 20, 30, 40, 50]);
    const first = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MaxParts: 2 }));
    expect(first.Parts?.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextPartNumberMarker).toBe('2');
    const second = await client.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MaxParts: 2, PartNumberMarker: first.NextPartNumberMarker }),
    );
    expect(second.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([[3, 30], [4, 40]]);
    const last = await client.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MaxParts: 2, PartNumberMarker: second.NextPartNumberMarker }),
    );
    expect(last.Parts?.map((p) => p.PartNumber)).toEqual([5]);
    expect(last.IsTruncated).toBe(false);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  });

  it('answers NoSuchUpload for a made-up id, another key, and an aborted upload', async () => {
    const key = 'uploads/t/gone.csv';
    const { uploadId } = await startUpload(key, [10]);
    for (const input of [
      { Key: key, UploadId: '0'.repeat(32) },
      { Key: key, UploadId: '../../../etc' },
      { Key: 'uploads/t/other.csv', UploadId: uploadId },
    ]) {
      expect(errorName(await client.send(new ListPartsCommand({ Bucket: BUCKET, ...input })).catch((e: unknown) => e))).toBe('NoSuchUpload');
    }
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    const err = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })).catch((e: unknown) => e);
    expect(errorName(err)).toBe('NoSuchUpload');
  });

  it('a part re-sent under the same number replaces the old one', async () => {
    const key = 'uploads/t/resent.csv';
    const { uploadId } = await startUpload(key, [100]);
    const again = await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 1, Body: Buffer.alloc(7, 'z') }));
    const res = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    expect(res.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([[1, 7, again.ETag]]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  });
});

describe('embedded S3: ListMultipartUploads', () => {
  it('lists the uploads in progress by key with their start time, filtered by prefix and paged by markers', async () => {
    const started = Date.now();
    const a = await startUpload('inprogress/a.csv', [1]);
    const b1 = await startUpload('inprogress/b.csv', [1]);
    const b2 = await startUpload('inprogress/b.csv', [1]);
    await startUpload('elsewhere/c.csv', [1]);
    const all = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'inprogress/' }));
    const expected = [
      ['inprogress/a.csv', a.uploadId],
      ...[b1.uploadId, b2.uploadId].sort().map((id) => ['inprogress/b.csv', id]),
    ];
    expect(all.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual(expected);
    for (const u of all.Uploads ?? []) expect(u.Initiated!.getTime()).toBeGreaterThanOrEqual(started - 2000);

    const page1 = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'inprogress/', MaxUploads: 2 }));
    expect(page1.IsTruncated).toBe(true);
    const page2 = await client.send(
      new ListMultipartUploadsCommand({
        Bucket: BUCKET,
        Prefix: 'inprogress/',
        KeyMarker: page1.NextKeyMarker,
        UploadIdMarker: page1.NextUploadIdMarker,
      }),
    );
    expect([...page1.Uploads!, ...page2.Uploads!].map((u) => [u.Key, u.UploadId])).toEqual(expected);
    expect(page2.IsTruncated).toBe(false);
  });
});
