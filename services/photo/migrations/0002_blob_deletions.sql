-- Blobs to delete from the blob store. A key is queued in the same transaction that drops its metadata,
-- so no blob is forgotten; the row goes once the delete succeeded, and the janitor retries the others
-- with backoff (attempts, last_error, next_attempt_at).
CREATE TABLE blob_deletions (
  storage_key text PRIMARY KEY,
  attempts int NOT NULL DEFAULT 0,
  last_error text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The janitor's scan: due rows, oldest due first.
CREATE INDEX blob_deletions_due_idx ON blob_deletions (next_attempt_at);
