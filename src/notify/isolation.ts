// Isolation between receivers, as SQL fragments of the claim (outbox.repository.ts). A slow, hanging
// or rate-limited receiver must never hold up the others, whatever the number of dispatchers, so
// every rule lives in PostgreSQL and is applied by the claim statement itself:
// - per-endpoint in-flight cap: an endpoint has at most `maxInFlight` leased deliveries across all
//   dispatchers — counted from the leases, no counter to drift; a hanging endpoint thus occupies at
//   most its own slots until the attempt timeout. (callbackUrl deliveries are not capped: one
//   receiver taking every upload's callback is the common case, and capping its host would cap the
//   whole callback throughput; they are claimed fairly by host, below);
// - rate limit: an endpoint's `rate_limit_per_second` is enforced with GCRA (the generic cell rate
//   algorithm of ATM, ITU-T I.371): endpoints.rate_next_at is the theoretical arrival time of its
//   next request, advanced by 1/rate for each delivery claimed;
// - fair claiming: due rows are ranked within their receiver (ROW_NUMBER() OVER (PARTITION BY …))
//   and claimed round-robin — every receiver's oldest first, then every receiver's second … — so
//   no receiver can take all of a claim's slots while others have due deliveries.
// Claims are serialized by a transaction-level advisory lock (claimDue), so each claim counts the
// leases the previous one committed: the cap and the rate hold exactly across dispatchers.

/** pg_advisory_xact_lock key serializing claimDue across dispatchers (any fixed bigint; "isolate"). */
export const CLAIM_LOCK_KEY = 0x69736f6c617465n.toString();

/**
 * GCRA burst tolerance (ms): a claim may run this far ahead of the theoretical arrival time, so one
 * claim can take several deliveries of a fast endpoint; over any window of T seconds an endpoint
 * receives at most rate·(T + tolerance) + 1 requests.
 */
export const RATE_BURST_MS = 100;

/**
 * The receiver a delivery is claimed fairly within: its endpoint, or for a callbackUrl delivery the
 * host (and port) of the URL, lower-cased.
 */
export const RECEIVER_KEY = `COALESCE('endpoint:' || deliveries.endpoint_id,
  'host:' || lower(substring(deliveries.target from '^[^:]+://(?:[^@/?#]*@)?([^/?#]*)')))`;

/**
 * CTEs ending in `due` (id, attempts, run_first_attempt, redeliver_requested: the rows picked and
 * locked). `ready` is the condition of a claimable row (due, not leased, flowing, in order).
 * Parameters: $1 the claim's limit, $6 the in-flight cap per endpoint.
 */
export function fairDueCtes(ready: string): string {
  return `ready AS (
       SELECT id, endpoint_id, next_attempt_at, seq, ${RECEIVER_KEY} AS receiver FROM deliveries WHERE ${ready}),
     in_flight AS (
       SELECT ${RECEIVER_KEY} AS receiver, count(*)::int AS n FROM deliveries
        WHERE delivery_status = 'pending' AND locked_until >= now() AND endpoint_id IS NOT NULL
        GROUP BY 1),
     rate_room AS (
       SELECT e.id,
              CASE WHEN e.rate_next_at IS NULL OR e.rate_next_at <= now() + interval '${RATE_BURST_MS} milliseconds'
                   THEN 1 + floor(EXTRACT(EPOCH FROM now() + interval '${RATE_BURST_MS} milliseconds'
                                            - GREATEST(e.rate_next_at, now())) * e.rate_limit_per_second)::int
                   ELSE 0 END AS n
         FROM endpoints e
        WHERE e.rate_limit_per_second IS NOT NULL AND e.id IN (SELECT endpoint_id FROM ready)),
     picked AS (
       SELECT r.id FROM (
         SELECT ready.*, row_number() OVER (PARTITION BY receiver ORDER BY next_attempt_at, seq) AS rn FROM ready) r
         LEFT JOIN in_flight f ON f.receiver = r.receiver
         LEFT JOIN rate_room rr ON rr.id = r.endpoint_id
        WHERE r.endpoint_id IS NULL OR r.rn <= LEAST($6::int - COALESCE(f.n, 0), COALESCE(rr.n, $6::int))
        ORDER BY r.rn, r.next_attempt_at, r.seq
        LIMIT $1),
     due AS (
       SELECT id, attempts, run_first_attempt, redeliver_requested FROM deliveries
        WHERE id IN (SELECT id FROM picked) AND delivery_status = 'pending'
          AND (locked_until IS NULL OR locked_until < now())
        FOR UPDATE SKIP LOCKED)`;
}

/**
 * A CTE, after `claimed`, charging each rate-limited endpoint 1/rate seconds per delivery claimed
 * (GCRA: the arrival time moves on from itself, or from now if it lies in the past).
 */
export const CHARGE_RATE = `charged AS (
       UPDATE endpoints e
          SET rate_next_at = GREATEST(e.rate_next_at, now()) + make_interval(secs => c.n::double precision / e.rate_limit_per_second)
         FROM (SELECT endpoint_id, count(*) AS n FROM claimed
                WHERE NOT budget_spent AND endpoint_id IS NOT NULL GROUP BY endpoint_id) c
        WHERE e.id = c.endpoint_id AND e.rate_limit_per_second IS NOT NULL)`;

/**
 * The earliest time a rate-limited endpoint with deliveries waiting may be claimed again (a
 * subquery yielding a timestamptz, NULL if none): the dispatcher sets its timer by it.
 */
export const NEXT_RATE_SLOT = `(SELECT min(e.rate_next_at) - interval '${RATE_BURST_MS} milliseconds' FROM endpoints e
                WHERE e.rate_limit_per_second IS NOT NULL
                  AND e.rate_next_at > now() + interval '${RATE_BURST_MS} milliseconds'
                  AND EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.delivery_status = 'pending'))`;
