// Child process of a bench: the embedded S3 server (s3rver, as `serve` starts it with no S3_ENDPOINT)
// alone in its own process, so the store's CPU is not charged to the bench or the API. Prints
// `MARK listening <endpoint>` once it answers, then serves until it is killed.
// Input (argv[2], JSON): { dataDir: string; bucket: string }.
import { startEmbeddedS3 } from '../../src/storage/embedded-s3.ts';
import { mark } from './child.ts';

const input = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; bucket: string };
const s3 = await startEmbeddedS3({ dataDir: input.dataDir, port: 0, bucket: input.bucket });
mark(`listening ${s3.endpoint}`);
// Nothing to flush: the bench deletes the data folder. (Stopping the server would wait for keep-alive sockets.)
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
void s3;
