// A tus upload's Upload-Metadata (tus 1.0 "creation": comma-separated `key base64(value)` pairs, parsed
// by @tus/server) carries what the multipart path takes as form fields: the same names, checked by the
// same parseOptions, at creation — so a bad option is refused before any byte is sent.
import type { AddressList } from '../../notify/ssrf.ts';
import { checkIdempotencyKey, displayFilename, OPTION_FIELDS, parseOptions } from '../receive.ts';

/** Upload-Metadata as @tus/server parses it: a key sent without a value is null. */
export type TusMetadata = Record<string, string | null>;


/** The upload options of `metadata` as parseOptions takes them (text by name). */
export function optionFields(metadata: TusMetadata | undefined): Record<string, string> {
  const raw: Record<string, string> = {};
  // the option keys are named as the multipart form fields (see POST /uploads)
  for (const key of OPTION_FIELDS) {
    const value = metadata?.[key];
    if (typeof value === 'string') raw[key] = value;
  }
  return raw;
}

/** The display name: `filename`, else `name` (what Uppy sends), made safe by displayFilename. */
export function tusFilename(metadata: TusMetadata | undefined): string {
  return displayFilename(metadata?.filename ?? metadata?.name);
}

/**
 * Checks a new upload's metadata and returns it with `idempotencyKey` set from the `Idempotency-Key`
 * header when the metadata has none (the header reaches only the creation request; the key is needed
 * when the last byte lands). Throws AppError as POST /uploads does for the same mistakes.
 */
export function checkCreationMetadata(metadata: TusMetadata | undefined, idempotencyHeader: string | null, allowedCidrs: AddressList): TusMetadata {
  const checked: TusMetadata = { ...metadata };
  const key = checked.idempotencyKey ?? idempotencyHeader;
  if (key !== null && key !== undefined) {
    checkIdempotencyKey(key);
    checked.idempotencyKey = key;
  }
  parseOptions(optionFields(checked), allowedCidrs);
  return checked;
}
