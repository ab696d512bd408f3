// The UserService handlers called directly, as an RPC host calls them (request message + handler
// context, response built from the returned init shape), over the domain with hand-made fakes.
import { expect } from "chai";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, createHandlerContext, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  DeleteAccountRequestSchema,
  GetProfileRequestSchema,
  LoginRequestSchema,
  LoginResponseSchema,
  LogoutRequestSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
  UpdateProfileRequestSchema,
  UpdateProfileResponseSchema,
  UserService,
} from "../../../gen/usermesh/user/v1/user_pb.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createUserHandlers } from "../handlers.js";
import { createUsers } from "../users.js";
import {
  createFakeHasher,
  createFakeProfileCache,
  createFakeSessionClient,
  createFakeThrottle,
  createFakeUserStore,
} from "./fakes.js";

function contextFor(name: keyof typeof UserService.method): HandlerContext {
  const method = UserService.method[name];
  return createHandlerContext({
    service: UserService,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://127.0.0.1/${UserService.typeName}/${method.name}`,
  });
}

describe("user handlers", () => {
  function setup() {
    const store = createFakeUserStore();
    const sessions = createFakeSessionClient(Date.UTC(2030, 0, 2));
    const users = createUsers({
      store,
      hasher: createFakeHasher(),
      sessions,
      cache: createFakeProfileCache(),
      throttle: createFakeThrottle(),
      logger: { warn: () => {} },
      clock: () => Date.UTC(2030, 0, 1),
    });
    // Typed as the RPC host sees it: a request and a context in, a response init shape out.
    const handlers: ServiceImpl<typeof UserService> = createUserHandlers({ users });
    return { handlers, store, sessions };
  }

  const registerRequest = create(RegisterRequestSchema, {
    email: "ada@example.com",
    password: "correct horse",
    name: "Ada",
    ip: "203.0.113.9",
    userAgent: "mocha",
  });

  it("registers and logs in, answering the user and the session with timestamps", async () => {
    const { handlers } = setup();
    const registered = create(RegisterResponseSchema, await handlers.register(registerRequest, contextFor("register")));
    expect(registered.user).to.include({ email: "ada@example.com", name: "Ada" });
    expect(timestampMs(registered.user!.createdAt!)).to.equal(Date.UTC(2030, 0, 1));
    expect(timestampMs(registered.session!.expiresAt!)).to.equal(Date.UTC(2030, 0, 2));
    expect(registered.session!.token).to.not.equal("");

    const login = create(
      LoginResponseSchema,
      await handlers.login(
        create(LoginRequestSchema, { email: "ADA@example.com", password: "correct horse" }),
        contextFor("login"),
      ),
    );
    expect(login.user!.id).to.equal(registered.user!.id);
    expect(login.session!.token).not.to.equal(registered.session!.token);
  });

  it("passes unset optional fields of UpdateProfile as absent, and set ones through", async () => {
    const { handlers, sessions } = setup();
    const { user, session } = create(
      RegisterResponseSchema,
      await handlers.register(registerRequest, contextFor("register")),
    );
    const other = sessions.open(user!.id);

    const renamed = create(
      UpdateProfileResponseSchema,
      await handlers.updateProfile(
        create(UpdateProfileRequestSchema, { userId: user!.id, name: "Countess", sessionId: session!.sessionId }),
        contextFor("updateProfile"),
      ),
    );
    expect(renamed.user).to.include({ name: "Countess", email: "ada@example.com" });

    const missing = await rejectionOf(
      Promise.resolve(
        handlers.updateProfile(
          create(UpdateProfileRequestSchema, { userId: user!.id, newPassword: "new password!" }),
          contextFor("updateProfile"),
        ),
      ),
    );
    expect(missing.code).to.equal(Code.FailedPrecondition);

    await handlers.updateProfile(
      create(UpdateProfileRequestSchema, {
        userId: user!.id,
        newPassword: "new password!",
        currentPassword: "correct horse",
        sessionId: session!.sessionId,
      }),
      contextFor("updateProfile"),
    );
    expect(sessions.sessions.has(other.token)).to.equal(false);
    expect(sessions.sessions.has(session!.token)).to.equal(true);
  });

  it("reads a profile, logs out and deletes the account", async () => {
    const { handlers, store, sessions } = setup();
    const { user, session } = create(
      RegisterResponseSchema,
      await handlers.register(registerRequest, contextFor("register")),
    );
    const profile = await handlers.getProfile(create(GetProfileRequestSchema, { userId: user!.id }), contextFor("getProfile"));
    expect(profile.user).to.include({ id: user!.id, name: "Ada" });

    const extra = sessions.open(user!.id);
    expect(await handlers.logout(create(LogoutRequestSchema, { token: extra.token }), contextFor("logout"))).to.deep.equal({});
    expect(sessions.sessions.has(extra.token)).to.equal(false);

    await handlers.deleteAccount(
      create(DeleteAccountRequestSchema, { userId: user!.id, password: "correct horse", sessionToken: session!.token }),
      contextFor("deleteAccount"),
    );
    expect(store.users.size).to.equal(0);
    const gone = await rejectionOf(
      Promise.resolve(handlers.getProfile(create(GetProfileRequestSchema, { userId: user!.id }), contextFor("getProfile"))),
    );
    expect(gone.code).to.equal(Code.NotFound);
  });
});
