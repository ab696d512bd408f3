import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { createOpenApiValidator } from "../../../test/support/openapi-validator.js";
import { openapiPath } from "./route-harness.js";

// The validator the e2e suite runs on every response: it must accept what the document promises and
// reject what it does not.
describe("OpenAPI response validator", () => {
  const validator = createOpenApiValidator(openapiPath);
  const photo = {
    id: randomUUID(),
    userId: randomUUID(),
    contentType: "image/png",
    sizeBytes: "1024",
    width: 1,
    height: 1,
    sha256: "a".repeat(64),
    createdAt: "2026-01-01T00:00:00Z",
  };
  const publicUser = { id: randomUUID(), name: "Ada", createdAt: "2026-01-01T00:00:00Z" };
  const problem = { type: "about:blank", title: "Not Found", status: 404, detail: "user not found", traceId: "t" };

  it("maps concrete paths to their templates, literal segments first", () => {
    expect(validator.matchRoute("DELETE", "/users/logout")).to.equal("/users/logout");
    expect(validator.matchRoute("GET", `/users/${publicUser.id}`)).to.equal("/users/{id}");
    expect(validator.matchRoute("GET", `/users/a/photos/b/content?x=1`)).to.equal("/users/{id}/photos/{photoId}/content");
    expect(validator.matchRoute("HEAD", "/me/photos/x/content")).to.equal("/me/photos/{photoId}/content");
    expect(validator.matchRoute("DELETE", `/users/${publicUser.id}`)).to.equal(undefined);
    expect(validator.matchRoute("GET", "/nowhere")).to.equal(undefined);
  });

  it("accepts documented bodies, by template or by concrete path", () => {
    validator.validateResponse("GET", "/users/{id}", 200, "application/json; charset=utf-8", { user: publicUser, photos: [photo] });
    validator.validateResponse("GET", `/users/${publicUser.id}`, 404, "application/problem+json", JSON.stringify(problem));
    validator.validateResponse("DELETE", "/me/photos/x", 204, null, Buffer.alloc(0));
    validator.validateResponse("GET", "/me/photos/x/content", 200, "image/png", Buffer.from([1, 2, 3]));
  });

  it("rejects a public view that carries the email", () => {
    expect(() =>
      validator.validateResponse("GET", "/users/{id}", 200, "application/json", { user: { ...publicUser, email: "a@b.c" }, photos: [] }),
    ).to.throw(/\/user must NOT have additional properties.*email/);
  });

  it("rejects an int64 written as a JSON number and a problem without its trace id", () => {
    expect(() => validator.validateResponse("GET", "/me/photos/{photoId}", 200, "application/json", { photo: { ...photo, sizeBytes: 1024 } })).to.throw(
      /\/photo\/sizeBytes must be string/,
    );
    const untraced: Partial<typeof problem> = { ...problem };
    delete untraced.traceId;
    expect(() => validator.validateResponse("GET", "/me", 401, "application/problem+json", untraced)).to.throw(/traceId/);
  });

  it("rejects undocumented statuses, content types and bodies", () => {
    expect(() => validator.validateResponse("GET", "/me", 418, "application/json", {})).to.throw(/status not documented/);
    expect(() => validator.validateResponse("GET", "/me", 401, "text/html", "<p>no</p>")).to.throw(/content type "text\/html" not documented/);
    expect(() => validator.validateResponse("DELETE", "/me/photos/x", 204, "application/json", "{}")).to.throw(/promises no body/);
    expect(() => validator.validateResponse("GET", "/nowhere", 200, "application/json", {})).to.throw(/no documented route/);
    expect(() => validator.validateResponse("GET", "/me", 200, "application/json", "{oops")).to.throw(/not JSON/);
  });
});
