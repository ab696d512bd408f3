// Context values every host (grpc-js or connect-node) sets for a call, read by interceptors.
import { createContextKey } from "@connectrpc/connect";

/** Absolute deadline of the incoming call in epoch ms; undefined when the caller set none. */
export const deadlineKey = createContextKey<number | undefined>(undefined, { description: "call deadline" });

/** The caller's address as the transport reports it. */
export const peerKey = createContextKey<string>("", { description: "peer address" });
