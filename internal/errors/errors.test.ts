import { expect } from "chai";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  codeName,
  fieldViolationsOf,
  httpStatusFor,
  invalidArgument,
  isClientError,
  logLevelFor,
  reasonOf,
  reasonedError,
  resourceExhausted,
  retryDelayMsOf,
  toPublicError,
} from "./errors.js";

describe("errors", () => {
  it("maps gRPC codes to the REST contract's HTTP statuses", () => {
    const table: [Code, number][] = [
      [Code.InvalidArgument, 400], [Code.Unauthenticated, 401], [Code.PermissionDenied, 403],
      [Code.NotFound, 404], [Code.AlreadyExists, 409], [Code.FailedPrecondition, 422],
      [Code.ResourceExhausted, 429], [Code.Unavailable, 503], [Code.DeadlineExceeded, 504],
      [Code.Internal, 500], [Code.Unknown, 500], [Code.DataLoss, 500],
    ];
    for (const [code, status] of table) expect(httpStatusFor(code), Code[code]).to.equal(status);
  });

  it("spells codes as Go does, for logs and metric labels", () => {
    expect([0, Code.InvalidArgument, Code.DeadlineExceeded, Code.Unauthenticated].map(codeName)).to.deep.equal([
      "OK", "InvalidArgument", "DeadlineExceeded", "Unauthenticated",
    ]);
  });

  it("keeps client errors away from the error log level", () => {
    expect(isClientError(Code.InvalidArgument)).to.equal(true);
    expect(logLevelFor(Code.NotFound)).to.equal("info");
    expect(logLevelFor(Code.Internal)).to.equal("error");
    expect(logLevelFor(Code.Unavailable)).to.equal("error");
    expect(logLevelFor(undefined)).to.equal("info");
  });

  it("carries every field violation as BadRequest details", () => {
    const error = invalidArgument("invalid", [
      { field: "email", description: "not an email", reason: "FORMAT" },
      { field: "name", description: "too long" },
    ]);
    expect(error.code).to.equal(Code.InvalidArgument);
    expect(fieldViolationsOf(error)).to.deep.equal([
      { field: "email", description: "not an email", reason: "FORMAT" },
      { field: "name", description: "too long", reason: "" },
    ]);
  });

  it("carries reasons and retry delays as details", () => {
    expect(reasonOf(reasonedError(Code.InvalidArgument, "too big", "PHOTO_TOO_LARGE"))).to.equal("PHOTO_TOO_LARGE");
    expect(retryDelayMsOf(resourceExhausted("slow down", 1500))).to.equal(1500);
  });

  it("hides unexpected errors behind an opaque INTERNAL and keeps the cause", () => {
    const cause = new Error("relation users does not exist");
    const error = toPublicError(cause);
    expect(error.code).to.equal(Code.Internal);
    expect(error.rawMessage).to.equal("internal error");
    expect(error.cause).to.equal(cause);
    const known = new ConnectError("nope", Code.NotFound);
    expect(toPublicError(known)).to.equal(known);
  });
});
