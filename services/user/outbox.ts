// The transactional outbox: lifecycle events written in the same PostgreSQL transaction as the change
// they describe, for a relay to publish to the broker afterwards (so a broker outage loses none).
import { randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { PoolClient } from "pg";
import { UserDeletedSchema, UserRegisteredSchema } from "../../gen/usermesh/events/v1/events_pb.js";

/** One event to publish: routing key on the user exchange, CloudEvents type, protobuf payload. */
export interface OutboxEvent {
  readonly routingKey: "user.registration" | "user.delete";
  /** The CloudEvents type, e.g. "usermesh.user.v1.registered". */
  readonly type: string;
  readonly userId: string;
  /** The binary protobuf of the event message (usermesh.events.v1). */
  readonly payload: Uint8Array;
  readonly occurredAt: Date;
}

/** The NOTIFY channel that wakes the relay; PostgreSQL delivers the notification only on commit. */
export const outboxChannel = "user_outbox";

/**
 * Inserts the event into the outbox with a new event id, inside the caller's transaction: it becomes
 * visible to the relay (and wakes it) only if that transaction commits. Throws the driver's error.
 */
export async function appendOutbox(client: PoolClient, event: OutboxEvent): Promise<void> {
  await client.query(
    `INSERT INTO outbox (event_id, aggregate_id, routing_key, event_type, payload, occurred_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      randomUUID(),
      event.userId,
      event.routingKey,
      event.type,
      Buffer.from(event.payload.buffer, event.payload.byteOffset, event.payload.byteLength),
      event.occurredAt,
    ],
  );
  await client.query(`SELECT pg_notify('${outboxChannel}', '')`);
}

/** user.registration with a usermesh.events.v1.UserRegistered payload. */
export function userRegisteredEvent(userId: string, at: Date): OutboxEvent {
  const message = create(UserRegisteredSchema, { userId, registeredAt: timestampFromDate(at) });
  return {
    routingKey: "user.registration",
    type: "usermesh.user.v1.registered",
    userId,
    payload: toBinary(UserRegisteredSchema, message),
    occurredAt: at,
  };
}

/** user.delete with a usermesh.events.v1.UserDeleted payload. */
export function userDeletedEvent(userId: string, at: Date): OutboxEvent {
  const message = create(UserDeletedSchema, { userId, deletedAt: timestampFromDate(at) });
  return {
    routingKey: "user.delete",
    type: "usermesh.user.v1.deleted",
    userId,
    payload: toBinary(UserDeletedSchema, message),
    occurredAt: at,
  };
}
