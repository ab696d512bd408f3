-- The transactional outbox: rows written with the change they describe, published by the relay, which
-- sets published_at once the broker confirms. The partial index keeps the relay's scan to what is left.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  aggregate_id uuid NOT NULL,
  routing_key text NOT NULL,
  event_type text NOT NULL,
  payload bytea NOT NULL,
  occurred_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
