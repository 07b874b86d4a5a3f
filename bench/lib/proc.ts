// Reading a process's memory and CPU from /proc (Linux). Values are null once the process is gone.
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const CLK_TCK = 100;

/** A `Vm*` line of /proc/<pid>/status in KiB (VmRSS: resident now; VmHWM: the kernel's resident peak). */
export function statusKb(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return null;
  }
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** User + system CPU seconds the process has used so far (its own threads, not its children). */
export function cpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14
  const stime = Number(fields[12]); // field 15
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLK_TCK : null;
}

export function mb(kb: number | null): string {
  return kb === null ? 'n/a' : `${(kb / 1024).toFixed(0)} MB`;
}
