// Where the client commands find the service: flags first, then STREAM_API_URL / STREAM_API_KEY.
// (The service's own settings live in src/config.ts; this is the client's only reader of the env.)
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
