// Test data from the product's own generator (src/datagen): the same bytes `stream-api generate` writes.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { webhookEventsChunks, webhookEventsStream, type GenerateOptions } from '../../src/datagen/webhook-events.ts';

/** `rows` generated webhook_events rows (with the header) in memory. */
export function generateCsv(rows: number, opts: Omit<GenerateOptions, 'rows'> = {}): Buffer {
  return Buffer.concat([...webhookEventsChunks({ ...opts, rows })]);
}

/** `rows` generated webhook_events rows (with the header) written to `file`. */
export async function generateEvents(rows: number, file: string, opts: Omit<GenerateOptions, 'rows'> = {}): Promise<void> {
  await pipeline(webhookEventsStream({ ...opts, rows }), createWriteStream(file));
}
