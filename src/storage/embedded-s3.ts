// Zero-config stand-in: an S3-protocol server (s3rver) under DATA_DIR, reached through the AWS SDK.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';

export interface EmbeddedS3Handle {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startEmbeddedS3(opts: { dataDir: string; port: number; bucket: string }): Promise<EmbeddedS3Handle> {
  const directory = path.join(opts.dataDir, 's3');
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port,
    silent: true,
    directory,
    // Path-style only: bucket names never become hostnames on loopback.
    vhostBuckets: false,
    configureBuckets: [{ name: opts.bucket }],
  });
  const address = await server.run();
  return { endpoint: `http://127.0.0.1:${address.port}`, stop: () => server.close() };
}
