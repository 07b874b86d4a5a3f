// Who may keep a live stream open, and the ways a stream ends. Pure: the rule that judges one
// stream's access against the result of the batched check (access-watch.ts), no I/O.

/** What admitted a stream; re-checked for as long as the stream is open. */
export interface StreamAccess {
  tenantId: string;
  /** the API key that opened the stream, or that minted its token */
  apiKeyId: string;
  /** set when the stream was opened with `?token=`: the token's SHA-256, and its expiry on this process's clock (ms since the epoch) */
  token: { hash: Buffer; expiresAtMs: number } | null;
}

/**
 * Why a stream was ended for want of access: a stable code the client gets in a final `error` event
 * (`{ error: { code, message } }`, the HTTP error shape), and as the WebSocket close reason with the
 * close code (4401/4404: the private-use range 4000–4999, HTTP's 401/404 plus 4000).
 */
export const ACCESS_LOST = {
  key_revoked: { message: 'the API key that opened this stream was revoked', wsCloseCode: 4401 },
  token_expired: { message: 'the token of this stream expired; get a new one from POST /auth/token', wsCloseCode: 4401 },
  not_found: { message: 'upload not found', wsCloseCode: 4404 },
} as const satisfies Record<string, { message: string; wsCloseCode: number }>;

export type AccessLost = keyof typeof ACCESS_LOST;

export const isAccessLost = (reason: string): reason is AccessLost => Object.hasOwn(ACCESS_LOST, reason);

/** How a stream ended (the `reason` of its log line and of the ended-streams counter). */
export type EndReason = 'done' | 'shutdown' | 'client_gone' | AccessLost;

/** What one batched check found still valid. */
export interface ValidGrants {
  /** ids of unrevoked keys */
  apiKeyIds: ReadonlySet<string>;
  /** hex SHA-256 of unexpired tokens */
  tokenHashes: ReadonlySet<string>;
  /** upload id → its tenant, for uploads that still exist */
  uploadTenants: ReadonlyMap<string, string>;
}

/** Whether a stream (of one upload, or of a whole tenant when `uploadId` is null) may stay open; null if so. */
export function accessLost(access: StreamAccess, uploadId: string | null, valid: ValidGrants, nowMs: number): AccessLost | null {
  if (!valid.apiKeyIds.has(access.apiKeyId)) return 'key_revoked';
  const token = access.token;
  if (token && (token.expiresAtMs <= nowMs || !valid.tokenHashes.has(token.hash.toString('hex')))) return 'token_expired';
  if (uploadId !== null && valid.uploadTenants.get(uploadId) !== access.tenantId) return 'not_found';
  return null;
}
