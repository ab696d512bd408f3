import { expect } from "chai";
import { getEventListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { SessionService } from "../../gen/usermesh/session/v1/session_pb.js";
import { backoffMs, isRetryable, withRetries, type RetryPolicy } from "./retry.js";

const policy: RetryPolicy = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1000, multiplier: 2 };

describe("retry", () => {
  it("keeps each backoff within [0, min(max, initial * 2^(n-1))]", () => {
    const ceilings = [100, 200, 400, 800, 1000, 1000];
    ceilings.forEach((ceiling, i) => {
      expect(backoffMs(policy, i + 1, () => 0)).to.equal(0);
      expect(backoffMs(policy, i + 1, () => 0.999999)).to.equal(ceiling - 1);
    });
  });

  it("retries only methods the contract marks idempotent", () => {
    expect(isRetryable(SessionService.method.validateSession)).to.equal(true);
    expect(isRetryable(SessionService.method.listSessions)).to.equal(true);
    expect(isRetryable(SessionService.method.createSession)).to.equal(false);
  });

  it("stops after maxAttempts and throws the last UNAVAILABLE", async () => {
    let attempts = 0;
    const error = await withRetries(policy, undefined, async () => {
      attempts++;
      throw new ConnectError("down", Code.Unavailable);
    }, { random: () => 0 }).catch((e: unknown) => e);
    expect(attempts).to.equal(5);
    expect((error as ConnectError).code).to.equal(Code.Unavailable);
  });

  it("does not retry other codes", async () => {
    let attempts = 0;
    await withRetries(policy, undefined, async () => {
      attempts++;
      throw new ConnectError("no", Code.NotFound);
    }).catch(() => {});
    expect(attempts).to.equal(1);
  });

  it("gives up rather than wait past the deadline", async () => {
    let attempts = 0;
    const started = Date.now();
    await withRetries(policy, started + 50, async () => {
      attempts++;
      throw new ConnectError("down", Code.Unavailable);
    }, { random: () => 0.99 }).catch(() => {});
    expect(attempts).to.equal(1);
    expect(Date.now() - started).to.be.below(50);
  });

  it("stops at once, with no further attempt, when the signal aborts during a wait", async () => {
    let attempts = 0;
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 30);
    const error = await withRetries(policy, undefined, async () => {
      attempts++;
      throw new ConnectError("down", Code.Unavailable);
    }, { signal: abort.signal, random: () => 0.99 }).catch((e: unknown) => e);
    expect(attempts).to.equal(1);
    expect((error as ConnectError).code).to.equal(Code.Canceled);
    expect(Date.now() - started).to.be.below(300);
  });

  it("leaves no abort listener on the signal once its waits are over", async () => {
    const abort = new AbortController();
    await withRetries(policy, undefined, async () => {
      throw new ConnectError("down", Code.Unavailable);
    }, { signal: abort.signal, random: () => 0 }).catch(() => {});
    expect(getEventListeners(abort.signal, "abort")).to.have.length(0);
  });
});
