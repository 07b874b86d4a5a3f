// Plain-text output helpers: aligned Markdown tables and number formats.

export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fixed(n: number | null | undefined, digits = 2): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

export function mbytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

export function mib(kb: number | null): string {
  return kb === null ? 'n/a' : `${(kb / 1024).toFixed(0)} MB`;
}

/** A Markdown table with padded cells; columns whose header starts with '>' are right-aligned. */
export function table(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.startsWith('>'));
  const heads = headers.map((h) => (h.startsWith('>') ? h.slice(1) : h));
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(heads), rule, ...rows.map(line)].join('\n');
}

export function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}
