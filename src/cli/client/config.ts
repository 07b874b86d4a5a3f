// Where the client commands find the service: flags first, then STREAM_API_URL / STREAM_API_KEY; and
// the upload settings (tus threshold, the folder of the resume state).
// (The service's own settings live in src/config.ts; this is the client's only reader of the env.)
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.ts';

export interface ClientConfig {
  /** base URL of the service, without a trailing slash */
  url: string;
  key: string;
}

export const DEFAULT_URL = 'http://localhost:3002';

type Env = Record<string, string | undefined>;

export function loadClientConfig(flags: { url?: string | undefined; key?: string | undefined }, env: Env = process.env): ClientConfig {
  const rawUrl = flags.url ?? (env.STREAM_API_URL?.trim() || DEFAULT_URL);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`service URL "${rawUrl}" is not a valid URL (set STREAM_API_URL or pass --url)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`service URL "${rawUrl}" must start with http:// or https://`);
  }
  const key = flags.key ?? env.STREAM_API_KEY?.trim();
  if (!key) {
    throw new UsageError(
      'no API key: set STREAM_API_KEY or pass --key (create one with `stream-api keys create --tenant NAME`)',
    );
  }
  return { url: url.href.replace(/\/+$/, ''), key };
}

export interface UploadSettings {
  /** files of at least this many bytes go through tus (resumable); smaller ones as one multipart POST */
  tusThresholdBytes: number;
  /** the CLI's own folder: the tus resume state lives in it */
  stateDir: string;
}

export const DEFAULT_TUS_THRESHOLD_BYTES = 64 * 1024 * 1024;

/**
 * STREAM_API_TUS_THRESHOLD (bytes, default 64 MiB) and the CLI's state folder: STREAM_API_CONFIG_DIR,
 * else `$XDG_CONFIG_HOME/stream-api`, else `~/.config/stream-api` (XDG Base Directory). Throws UsageError
 * for a threshold that is not a whole number of bytes.
 */
export function loadUploadSettings(env: Env = process.env, home: string = os.homedir()): UploadSettings {
  const rawThreshold = env.STREAM_API_TUS_THRESHOLD?.trim();
  let tusThresholdBytes = DEFAULT_TUS_THRESHOLD_BYTES;
  if (rawThreshold) {
    tusThresholdBytes = Number(rawThreshold);
    if (!/^\d+$/.test(rawThreshold) || !Number.isSafeInteger(tusThresholdBytes)) {
      throw new UsageError(`STREAM_API_TUS_THRESHOLD must be a whole number of bytes, not "${rawThreshold}"`);
    }
  }
  const configHome = env.XDG_CONFIG_HOME?.trim() || path.join(home, '.config');
  const stateDir = env.STREAM_API_CONFIG_DIR?.trim() || path.join(configHome, 'stream-api');
  return { tusThresholdBytes, stateDir: path.resolve(stateDir) };
}
