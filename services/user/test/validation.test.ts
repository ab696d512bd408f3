// Unit tests of the account field rules.
import { expect } from "chai";
import { Code } from "@connectrpc/connect";
import { fieldViolationsOf, type FieldViolation } from "../../../internal/errors/errors.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import {
  checkEmail,
  checkName,
  checkPassword,
  checkUuid,
  emailKey,
  fitsBcrypt,
  validateRegistration,
} from "../validation.js";

function violationsOf(check: (violations: FieldViolation[]) => unknown): FieldViolation[] {
  const violations: FieldViolation[] = [];
  check(violations);
  return violations;
}

const reasonsOf = (violations: FieldViolation[]) => violations.map((v) => v.reason);

describe("account validation", () => {
  describe("email", () => {
    it("accepts an address and returns it trimmed with its case kept", () => {
      const violations: FieldViolation[] = [];
      expect(checkEmail("  Ada.Lovelace+x@Example.COM ", "email", violations)).to.equal("Ada.Lovelace+x@Example.COM");
      expect(violations).to.deep.equal([]);
    });

    it("requires a value, counting a blank one as empty", () => {
      expect(reasonsOf(violationsOf((v) => checkEmail("   ", "email", v)))).to.deep.equal(["REQUIRED"]);
    });

    it("rejects malformed addresses", () => {
      for (const bad of ["plain", "a@b", "two@@example.com", "sp ace@example.com", "a..b@example.com", "ü@example.com"]) {
        expect(reasonsOf(violationsOf((v) => checkEmail(bad, "email", v))), bad).to.deep.equal(["INVALID_FORMAT"]);
      }
    });

    it("allows 254 characters and rejects 255", () => {
      const domain = "@example.com";
      const at254 = `${"a".repeat(64)}.${"b".repeat(254 - 65 - domain.length)}${domain}`;
      expect(at254).to.have.length(254);
      expect(violationsOf((v) => checkEmail(at254, "email", v))).to.deep.equal([]);
      expect(reasonsOf(violationsOf((v) => checkEmail(`c${at254}`, "email", v)))).to.deep.equal(["TOO_LONG"]);
    });

    it("compares emails lowercased and trimmed", () => {
      expect(emailKey(" Ada@Example.COM ")).to.equal("ada@example.com");
    });
  });

  describe("name", () => {
    it("trims and NFC-normalises the name", () => {
      const violations: FieldViolation[] = [];
      // "e" + combining acute accent becomes the single code point "é".
      expect(checkName("  Rene\u0301e  ", "name", violations)).to.equal("Ren\u00e9e");
      expect(violations).to.deep.equal([]);
    });

    it("requires at least one visible character", () => {
      expect(reasonsOf(violationsOf((v) => checkName("", "name", v)))).to.deep.equal(["REQUIRED"]);
      expect(reasonsOf(violationsOf((v) => checkName(" \u3000 ", "name", v)))).to.deep.equal(["REQUIRED"]);
    });

    it("counts code points, so 64 emoji fit and 65 do not", () => {
      expect(violationsOf((v) => checkName("😀".repeat(64), "name", v))).to.deep.equal([]);
      expect(reasonsOf(violationsOf((v) => checkName("😀".repeat(65), "name", v)))).to.deep.equal(["TOO_LONG"]);
      expect(reasonsOf(violationsOf((v) => checkName("a".repeat(65), "name", v)))).to.deep.equal(["TOO_LONG"]);
    });

    it("rejects control and invisible formatting characters in names", () => {
      for (const bad of ["Ada\u0000", "Ada\nLovelace", "Ada\tL", "Ada\u200bL", "Ada\u202eL", "\u0007bell", "Ada\u2028L"]) {
        expect(reasonsOf(violationsOf((v) => checkName(bad, "name", v))), JSON.stringify(bad)).to.deep.equal([
          "INVALID_CHARACTERS",
        ]);
      }
    });
  });

  describe("password", () => {
    it("accepts 8 to 72 bytes", () => {
      expect(violationsOf((v) => checkPassword("12345678", "password", v))).to.deep.equal([]);
      expect(violationsOf((v) => checkPassword("x".repeat(72), "password", v))).to.deep.equal([]);
    });

    it("rejects fewer than 8 bytes, and an empty password as required", () => {
      expect(reasonsOf(violationsOf((v) => checkPassword("1234567", "password", v)))).to.deep.equal(["TOO_SHORT"]);
      expect(reasonsOf(violationsOf((v) => checkPassword("", "password", v)))).to.deep.equal(["REQUIRED"]);
    });

    it("counts UTF-8 bytes: 72 bytes of multibyte characters pass, 73 fail", () => {
      const euro72 = "€".repeat(24); // 3 bytes each: 24 characters, 72 bytes
      const euro73 = `${euro72}a`; // 25 characters, 73 bytes
      expect(Buffer.byteLength(euro72)).to.equal(72);
      expect(violationsOf((v) => checkPassword(euro72, "password", v))).to.deep.equal([]);
      expect(reasonsOf(violationsOf((v) => checkPassword(euro73, "password", v)))).to.deep.equal(["TOO_LONG"]);
      const emoji = "😀".repeat(18); // 4 bytes each: 72 bytes in 36 UTF-16 units
      expect(violationsOf((v) => checkPassword(emoji, "password", v))).to.deep.equal([]);
      expect(reasonsOf(violationsOf((v) => checkPassword(`${emoji}é`, "password", v)))).to.deep.equal(["TOO_LONG"]);
      expect(fitsBcrypt(euro72)).to.equal(true);
      expect(fitsBcrypt(euro73)).to.equal(false);
    });

    it("keeps surrounding spaces as part of the password", () => {
      expect(violationsOf((v) => checkPassword("  1234  ", "password", v))).to.deep.equal([]);
    });
  });

  it("checks UUIDs", () => {
    expect(violationsOf((v) => checkUuid("0b8e5a34-3f2b-4c1e-9f0a-2d6c1b7e8a90", "userId", v))).to.deep.equal([]);
    expect(reasonsOf(violationsOf((v) => checkUuid("not-a-uuid", "userId", v)))).to.deep.equal(["INVALID_FORMAT"]);
    expect(reasonsOf(violationsOf((v) => checkUuid("", "userId", v)))).to.deep.equal(["REQUIRED"]);
  });

  describe("registration", () => {
    it("returns the normalised fields of a valid registration", () => {
      expect(validateRegistration({ email: " ada@example.com", name: " Ada ", password: " secret pw " })).to.deep.equal({
        email: "ada@example.com",
        name: "Ada",
        password: " secret pw ",
      });
    });

    it("reports every violation at once, by proto3 JSON field name", async () => {
      const error = await rejectionOf(
        Promise.resolve().then(() => validateRegistration({ email: "nope", name: "\u0000", password: "€".repeat(25) })),
      );
      expect(error.code).to.equal(Code.InvalidArgument);
      expect(fieldViolationsOf(error).map((v) => [v.field, v.reason])).to.deep.equal([
        ["email", "INVALID_FORMAT"],
        ["name", "INVALID_CHARACTERS"],
        ["password", "TOO_LONG"],
      ]);
    });
  });
});
