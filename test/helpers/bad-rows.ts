// Breaks ~1% of a generated webhook_events file in every way the validator knows, and remembers how.
export const BREAKERS: Record<string, (fields: string[]) => string[] | Buffer> = {
  invalid_uuid: (f) => with_(f, 0, 'not-a-uuid'),
  required: (f) => with_(f, 1, '   '),
  invalid_integer: (f) => with_(f, 4, '12.5x'),
  out_of_range: (f) => with_(f, 4, '99999999999999999999'),
  pattern: (f) => with_(f, 5, 'usd1'),
  invalid_timestamp: (f) => with_(f, 6, '2025-02-30T00:00:00Z'),
  invalid_json: (f) => with_(f, 7, '"{not json}"'),
  field_count: (f) => f.slice(0, 7),
  too_long: (f) => with_(f, 1, 'x'.repeat(101)),
  nul_byte: (f) => with_(f, 3, 'cus\u0000x'),
  malformed_csv: (f) => with_(f, 3, 'cus_"abc'),
  invalid_utf8: (f) =>
    Buffer.concat([Buffer.from(f.slice(0, 2).join(',') + ','), Buffer.from([0xff, 0xfe]), Buffer.from(',' + f.slice(3).join(','))]),
};

function with_(fields: string[], index: number, value: string): string[] {
  const copy = [...fields];
  copy[index] = value;
  return copy;
}

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
  const kinds = Object.keys(BREAKERS);
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
