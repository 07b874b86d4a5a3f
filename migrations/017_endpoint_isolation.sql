-- Isolation between receivers: an endpoint's rate limit is enforced across every dispatcher by a
-- GCRA "theoretical arrival time" on the endpoint row, advanced by each claim statement (one column,
-- no bucket refill job). The in-flight cap needs no column: it is the count of leased deliveries.
ALTER TABLE endpoints
  -- when the endpoint's next request is due at its rate_limit_per_second (NULL: nothing sent yet);
  -- a claim may take a delivery while this is at most a small burst tolerance ahead of now()
  ADD COLUMN rate_next_at timestamptz;
