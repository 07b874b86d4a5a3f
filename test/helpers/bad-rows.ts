// Breaks ~1% of a generated webhook_events file in every way the validator knows, and remembers how
// (the breakers are the product generator's: `stream-api generate --bad-ratio`).
import { BAD_ROW_KINDS, BREAKERS } from '../../src/datagen/webhook-events.ts';

export { BREAKERS };

/** The generator's lines have no quoted commas except the last (payload) field. */
function splitGenerated(line: string): string[] {
  const payloadStart = line.indexOf(',"');
  const head = line.slice(0, payloadStart).split(',');
  return [...head, line.slice(payloadStart + 1)];
}

export interface BrokenFile {
  csv: Buffer;
  /** physical line number → the reject code expected for it */
  broken: Map<number, string>;
  /** physical line number → the original, valid line */
  original: Map<number, string>;
  header: string;
  dataRows: number;
}

export function breakRows(generated: string, every = 100): BrokenFile {
  const lines = generated.split('\n').filter((l) => l !== '');
  const kinds = BAD_ROW_KINDS;
  const broken = new Map<number, string>();
  const original = new Map<number, string>();
  const out: Buffer[] = [Buffer.from(lines[0] + '\n')];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const lineNo = i + 1;
    original.set(lineNo, line);
    if (i % every !== every / 2) {
      out.push(Buffer.from(line + '\n'));
      continue;
    }
    const kind = kinds[Math.floor(i / every) % kinds.length]!;
    const result = BREAKERS[kind]!(splitGenerated(line));
    out.push(Buffer.isBuffer(result) ? result : Buffer.from(result.join(',')), Buffer.from('\n'));
    broken.set(lineNo, kind);
  }
  return { csv: Buffer.concat(out), broken, original, header: lines[0]!, dataRows: lines.length - 1 };
}
