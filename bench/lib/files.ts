// Input files of a bench, made by the product's own generator (`stream-api generate`).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT, trackChild } from './child.ts';

/** `stream-api generate --rows N` into `file` (a child, so its memory is not ours); the file's size in bytes. */
export async function generateRows(file: string, rows: number): Promise<number> {
  const fh = await open(file, 'w');
  try {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stream-api.mjs'), 'generate', '--rows', String(rows)], {
      stdio: ['ignore', fh.fd, 'pipe'],
    });
    trackChild(child);
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (code !== 0) throw new Error(`stream-api generate exited with ${code}: ${err}`);
    await fh.sync(); // on disk now, not during a timed stage
  } finally {
    await fh.close();
  }
  return (await stat(file)).size;
}

/** About `bytes` of generated CSV: the generator's rows have a steady mean length, so a sample sizes the run. */
export async function generateBytes(file: string, bytes: number): Promise<number> {
  return (await generateAbout(file, bytes)).bytes;
}

/** As generateBytes; also how many data rows (the header not counted) the file holds. */
export async function generateAbout(file: string, bytes: number): Promise<{ bytes: number; rows: number }> {
  const sampleRows = 100_000;
  const perRow = (await generateRows(file, sampleRows)) / sampleRows;
  const rows = Math.ceil(bytes / perRow);
  return { bytes: await generateRows(file, rows), rows };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
