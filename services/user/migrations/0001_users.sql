-- Accounts. Emails keep the case they were registered with and are unique case-insensitively through
-- the index on lower(email) (validation admits ASCII addresses only, so lower() does not depend on the
-- collation). Lookups use the same expression: WHERE lower(email) = lower($1).
CREATE TABLE users (
  id uuid PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
