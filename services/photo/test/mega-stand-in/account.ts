// One MEGA v2 account with the key material megajs expects at login: the password-derived keys, the
// encrypted master key, an RSA key pair whose private half is encrypted with the master key, and
// session ids encrypted to that RSA key (megajs reads `csid`, never `tsid`).
import {
  constants,
  createCipheriv,
  createHmac,
  generateKeyPair,
  pbkdf2,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);
const generateKeyPairAsync = promisify(generateKeyPair);

/** MEGA v2 accounts: PBKDF2-HMAC-SHA512 over the password and the account's salt. */
const kdfIterations = 100_000;
const rsaModulusBits = 2048;
/** megajs keeps the first 43 bytes of the decrypted `csid` as the session id. */
const sessionIdBytes = 43;

export interface MegaAccount {
  /** Lower-cased, as megajs sends it. */
  readonly email: string;
  /** The user's 8-character handle: `u` in `us`/`ug`, the owner and key prefix of every node. */
  readonly userHandle: string;
  /** The `s` of the `us0` answer (base64url). */
  readonly salt: string;
  /** The `k` of the `us` answer: the master key encrypted with the password key (base64url). */
  readonly encryptedMasterKey: string;
  /** The `privk` of the `us` answer: the RSA private key as four MPIs, encrypted with the master key. */
  readonly encryptedPrivateKey: string;
  /** True when `uh` is the auth key derived from this account's password. */
  verifyAuthKey(uh: string): boolean;
  /** A new random session id and the `csid` that megajs decrypts back to it with its RSA key. */
  createSession(): { sid: string; csid: string };
}

/**
 * Creates the account's keys (a few hundred milliseconds: one RSA key generation and one PBKDF2 run).
 * The master key never leaves this function: the stand-in stores only what megajs encrypts with it.
 */
export async function createMegaAccount(email: string, password: string): Promise<MegaAccount> {
  const salt = randomBytes(32);
  const derived = await pbkdf2Async(Buffer.from(password), salt, kdfIterations, 32, "sha512");
  const passwordKey = derived.subarray(0, 16);
  const authKey = derived.subarray(16, 32);
  const masterKey = randomBytes(16);

  const { publicKey, privateKey } = await generateKeyPairAsync("rsa", { modulusLength: rsaModulusBits });
  const jwk = privateKey.export({ format: "jwk" });
  const [p, q, d, qi] = [jwk.p, jwk.q, jwk.d, jwk.qi].map((part) => {
    if (part === undefined) throw new Error("RSA key export lacks a private component");
    return Buffer.from(part, "base64url");
  });
  // megajs recombines CRT halves with u = p⁻¹ mod q; the JWK's qi is q⁻¹ mod p, so p and q swap roles.
  const privk = padToBlock(Buffer.concat([mpi(q), mpi(p), mpi(d), mpi(qi)]));

  return {
    email: email.toLowerCase(),
    userHandle: randomBytes(6).toString("base64url"),
    salt: salt.toString("base64url"),
    encryptedMasterKey: aesEcbEncrypt(passwordKey, masterKey).toString("base64url"),
    encryptedPrivateKey: aesEcbEncrypt(masterKey, privk).toString("base64url"),
    verifyAuthKey(uh) {
      const offered = Buffer.from(uh, "base64url");
      return offered.length === authKey.length && timingSafeEqual(offered, authKey);
    },
    createSession() {
      const sid = randomBytes(sessionIdBytes);
      // A leading zero byte would vanish in megajs's big-integer round trip and shift the id.
      sid[0] |= 1;
      return { sid: sid.toString("base64url"), csid: mpi(rsaEncryptRaw(publicKey, sid)).toString("base64url") };
    },
  };
}

/** The salt MEGA would answer for an unknown email: stable per email, so it reveals nothing. */
export function createDecoySalt(secret: Buffer, email: string): string {
  return createHmac("sha256", secret).update(email.toLowerCase()).digest().toString("base64url");
}

/** Textbook RSA (no padding), as MEGA uses for session ids: the plaintext is the integer itself. */
function rsaEncryptRaw(publicKey: KeyObject, plaintext: Buffer): Buffer {
  const modulusBytes = rsaModulusBits / 8;
  const block = Buffer.alloc(modulusBytes);
  plaintext.copy(block, modulusBytes - plaintext.length);
  return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, block);
}

/** MEGA's multi-precision integer: a 16-bit big-endian bit count, then the big-endian magnitude. */
function mpi(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const magnitude = value.subarray(start);
  const bits = (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]));
  const header = Buffer.alloc(2);
  header.writeUInt16BE(bits);
  return Buffer.concat([header, magnitude]);
}

function padToBlock(data: Buffer): Buffer {
  const padded = Buffer.alloc(Math.ceil(data.length / 16) * 16);
  data.copy(padded);
  return padded;
}

function aesEcbEncrypt(key: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv("aes-128-ecb", key, null).setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}
