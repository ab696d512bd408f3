-- The users this service knows of (from user.registration events, or from a first upload that overtook
-- its event) and their photos' metadata. Deleting a user cascades to its photos.
CREATE TABLE users (
  id uuid PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Tombstones of deleted users: a late upload, or a registration event redelivered after the delete,
-- must not bring the user back.
CREATE TABLE deleted_users (
  id uuid PRIMARY KEY,
  deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Photo metadata; the bytes live in the blob store under storage_key ("<user_id>/<id>").
CREATE TABLE photos (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  storage_key text NOT NULL UNIQUE,
  content_type text NOT NULL,
  size_bytes bigint NOT NULL,
  width int NOT NULL,
  height int NOT NULL,
  sha256 text NOT NULL,
  filename text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Serves the newest-first keyset pages: WHERE user_id = $1 AND (created_at, id) < ($2, $3).
CREATE INDEX photos_user_created_idx ON photos (user_id, created_at DESC, id DESC);
