/**
 * The public keys a token may be signed with, and the JWS algorithm each one
 * verifies (RFC 7518 §3): RSA → RS256, EC on P-256 → ES256; any other key is
 * refused. The JWT adapter verifies with this and the configuration checks
 * JWT_PUBLIC_KEY with it, so a key the configuration accepts is one the
 * authenticator can verify. It reads the key's type as node:crypto's
 * KeyObject describes it; parsing the PEM stays with the caller (core
 * imports no `node:` module).
 */
export type PublicKeyAlgorithm = "RS256" | "ES256";

export interface PublicKeyDescription {
  readonly asymmetricKeyType?: string | undefined;
  readonly asymmetricKeyDetails?: { readonly namedCurve?: string | undefined } | undefined;
}

export function publicKeyAlgorithmOf(key: PublicKeyDescription): PublicKeyAlgorithm | undefined {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  return undefined;
}
