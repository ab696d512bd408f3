// The user lifecycle events the photo service consumes: a registration makes the user known, a deletion
// removes the user with its photos' metadata and then their blobs. Every outcome is idempotent, since the
// broker delivers at least once.
import { Code, ConnectError } from "@connectrpc/connect";
import { fromBinary } from "@bufbuild/protobuf";
import { UserDeletedSchema, UserRegisteredSchema } from "../../gen/usermesh/events/v1/events_pb.js";
import type { Handler } from "../../internal/events/amqp-consumer.js";
import { fromAmqpMessage, InvalidCloudEventError, type CloudEvent } from "../../internal/events/cloudevents.js";
import type { FieldViolation } from "../../internal/errors/errors.js";
import {
  checkUuid,
  deleteQueuedBlobs,
  type BlobDeletionQueue,
  type BlobStore,
  type KnownUsers,
  type PhotoListCache,
} from "./photos.js";

/** CloudEvents types of the user service's lifecycle events (payloads from usermesh.events.v1). */
export const userEventTypes = {
  registered: "usermesh.user.v1.registered",
  deleted: "usermesh.user.v1.deleted",
} as const;

/** The content type the user service publishes its payloads with. */
const protobufContentType = "application/protobuf";

/** Why a message was dead-lettered: the `reason` label of the dead-letter counter. */
export type DeadLetterReason = "invalid_cloudevent" | "unknown_type" | "unsupported_content_type" | "undecodable_payload";

export interface UserEventsLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface UserEventsDeps {
  readonly users: KnownUsers;
  readonly deletions: Pick<BlobDeletionQueue, "completeBlobDeletion" | "failBlobDeletion">;
  readonly blobs: Pick<BlobStore, "delete">;
  readonly cache: Pick<PhotoListCache, "invalidate">;
  readonly logger: UserEventsLogger;
  readonly counters: {
    /** events_consumed_total{type}: events handled and acked, by CloudEvents type. */
    readonly consumed: { inc(labels: { type: string }): void };
    /** photo_events_dead_lettered_total{reason}: messages this handler rejected (no retry can fix them). */
    readonly deadLettered: { inc(labels: { reason: DeadLetterReason }): void };
  };
}

/**
 * The handler for createAmqpConsumer. Resolves "ack" once an event is applied (or needs nothing: a repeated
 * registration or deletion, a registration of a deleted user); "reject" (dead-letter, counted) for a message
 * no retry can fix: not a CloudEvent, an unknown type, a content type other than application/protobuf, or
 * a payload that does not decode to the type's message with a UUID user id; "retry" when the store cannot
 * be reached (the consumer holds the message and requeues it, never dead-letters it: a user.delete lost to a
 * database outage would leave photos behind). Any other failure throws (redelivered once, then dead-lettered). A blob that cannot be deleted at once does not fail the event: its
 * key is already queued for the janitor in the transaction that deleted the user.
 */
export function createUserEventHandler(deps: UserEventsDeps): Handler {
  const { users, deletions, blobs, cache, logger, counters } = deps;

  function reject(reason: DeadLetterReason, message: string, fields: Record<string, unknown>): "reject" {
    counters.deadLettered.inc({ reason });
    logger.warn(`user event dead-lettered: ${message}`, { reason, ...fields });
    return "reject";
  }

  return async (message) => {
    let event: CloudEvent;
    try {
      event = fromAmqpMessage(message);
    } catch (error) {
      if (!(error instanceof InvalidCloudEventError)) throw error;
      return reject("invalid_cloudevent", error.message, { attribute: error.attribute });
    }
    const fields = { eventId: event.id, eventType: event.type };
    if (event.type !== userEventTypes.registered && event.type !== userEventTypes.deleted) {
      return reject("unknown_type", "unknown event type", fields);
    }
    if (event.dataContentType !== protobufContentType) {
      return reject("unsupported_content_type", "payload is not application/protobuf", fields);
    }

    const schema = event.type === userEventTypes.registered ? UserRegisteredSchema : UserDeletedSchema;
    const userId = decodeUserId(schema, event.data);
    if (userId === undefined) return reject("undecodable_payload", `payload is not a ${schema.name}`, fields);
    try {
      if (event.type === userEventTypes.registered) {
        // False for a deleted user: the tombstone wins over a late or redelivered registration.
        await users.admitUser(userId);
      } else {
        const keys = await users.deleteUser(userId);
        await cache.invalidate(userId);
        await deleteQueuedBlobs(keys, { blobs, deletions, logger });
      }
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Unavailable) throw error;
      logger.warn("user event waits for the store", { ...fields, err: error });
      return "retry";
    }
    counters.consumed.inc({ type: event.type });
    return "ack";
  };
}

/** The user id of a UserRegistered / UserDeleted payload, or undefined when it does not decode to a UUID. */
function decodeUserId(schema: typeof UserRegisteredSchema | typeof UserDeletedSchema, data: Uint8Array): string | undefined {
  let userId: string;
  try {
    userId = fromBinary(schema, data).userId;
  } catch {
    return undefined;
  }
  const violations: FieldViolation[] = [];
  checkUuid(userId, "userId", violations);
  return violations.length === 0 ? userId : undefined;
}
