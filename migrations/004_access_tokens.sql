-- Short-lived access tokens for clients that cannot set an Authorization header (EventSource and
-- WebSocket in browsers). Accepted as ?token= on the live routes only, and only while the API key
-- that minted them is unrevoked. Like API keys, only the SHA-256 of a token is stored.

CREATE TABLE access_tokens (
  token_hash bytea PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

-- Expired rows are deleted opportunistically when tokens are minted, oldest first.
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
