// Awaits a promise that must fail with a ConnectError and returns that error.
import { expect } from "chai";
import { ConnectError } from "@connectrpc/connect";

export async function rejectionOf(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ConnectError);
    return error as ConnectError;
  }
  expect.fail("expected the call to fail");
}
