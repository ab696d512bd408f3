// UserStore on PostgreSQL (tables in migrations/): users, and lifecycle events in the outbox table
// written by the same transaction. Database errors become the mesh's errors in one function below.
import type pg from "pg";
import { ConnectError, internal, unavailable } from "../../internal/errors/errors.js";
import { isPgUnavailable, pgErrorCode, withTransaction } from "../../internal/stores/postgres.js";
import { emailTaken } from "./errors.js";
import { appendOutbox } from "./outbox.js";
import type { UserAccount, UserStore, UserTx } from "./users.js";

/** The unique index on lower(email), from migrations/0001_users.sql. */
const emailIndex = "users_email_lower_key";

const columns = "id, email, name, password_hash, created_at, updated_at";

interface UserRow {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  created_at: Date;
  updated_at: Date;
}

/**
 * A UserStore on a pg pool. Emails are looked up with lower(email) = lower($1), the expression of the
 * unique index, so lookups and uniqueness agree. Errors are mapped by pgUserStoreError.
 */
export function createPgUserStore(pool: pg.Pool): UserStore {
  async function findOne(where: string, value: string): Promise<UserAccount | undefined> {
    const { rows } = await mapped(() => pool.query<UserRow>(`SELECT ${columns} FROM users WHERE ${where}`, [value]));
    return rows[0] && accountOf(rows[0]);
  }

  function txFor(client: pg.PoolClient): UserTx {
    return {
      async insertUser(user) {
        const { rows } = await mapped(() =>
          client.query<UserRow>(
            `INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING ${columns}`,
            [user.id, user.email, user.name, user.passwordHash, user.createdAt],
          ),
        );
        return accountOf(rows[0]);
      },

      async updateUser(id, changes) {
        const { rows } = await mapped(() =>
          client.query<UserRow>(
            `UPDATE users
             SET name = COALESCE($2, name), email = COALESCE($3, email),
                 password_hash = COALESCE($4, password_hash), updated_at = $5
             WHERE id = $1
             RETURNING ${columns}`,
            [id, changes.name ?? null, changes.email ?? null, changes.passwordHash ?? null, changes.updatedAt],
          ),
        );
        return rows[0] && accountOf(rows[0]);
      },

      async deleteUser(id) {
        const result = await mapped(() => client.query("DELETE FROM users WHERE id = $1", [id]));
        return result.rowCount === 1;
      },

      async appendEvent(event) {
        await mapped(() => appendOutbox(client, event));
      },
    };
  }

  return {
    findById: (id) => findOne("id = $1", id),
    findByEmail: (email) => findOne("lower(email) = lower($1)", email),
    async transaction(fn) {
      const failed: { error?: unknown } = {};
      try {
        return await withTransaction(pool, async (client) => {
          try {
            return await fn(txFor(client));
          } catch (error) {
            failed.error = error;
            throw error;
          }
        });
      } catch (error) {
        // fn's own errors pass through unchanged; pool checkout, BEGIN and COMMIT failures are mapped.
        if ("error" in failed && error === failed.error) throw error;
        throw pgUserStoreError(error);
      }
    },
  };
}

/**
 * The one place PostgreSQL failures become the mesh's errors: a unique violation of the email index is
 * ALREADY_EXISTS (reason EMAIL_TAKEN); a database that cannot be reached (refused, reset, timed out,
 * shutting down, pool exhausted) is UNAVAILABLE; anything else is INTERNAL. ConnectErrors pass through.
 * The cause stays on the error for the log, never in the message.
 */
export function pgUserStoreError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (pgErrorCode(error) === "23505" && (error as { constraint?: unknown }).constraint === emailIndex) {
    return emailTaken();
  }
  if (isPgUnavailable(error)) return unavailable("user store unavailable", error);
  return internal(error);
}

async function mapped<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw pgUserStoreError(error);
  }
}

function accountOf(row: UserRow): UserAccount {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
