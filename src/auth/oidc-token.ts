// OIDC access tokens (JWTs) as passwords: the signature, issuer, audience and
// lifetime are checked by jose, then the identity is read from the claims.
import { errors, jwtVerify, type JWTVerifyGetKey, type JWSAlgorithm } from 'jose';
import type { Config } from '../config/types.js';
import { identityFrom, type OidcIdentity } from './oidc-identity.js';
import { localKeys, remoteKeys, type RemoteKeyOptions } from './oidc-jwks.js';

export type { OidcIdentity } from './oidc-identity.js';

export type OidcConfig = NonNullable<Config['auth']['oidc']>;

/** Asymmetric only: HS* would let anyone holding the (public) JWKS sign tokens, and `none` signs nothing. */
export const allowedAlgorithms: JWSAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Clock skew tolerated on exp and nbf between pgveil and the identity provider. */
export const clockToleranceSeconds = 30;

/** Far above any real access token; bounds the work done on a hostile "password". */
const maxTokenLength = 16 * 1024;

/** `reason` is a fixed word, safe to log: it never holds the token or claim values. */
export class OidcTokenError extends Error {
  constructor(readonly reason: string) {
    super(`OIDC token refused: ${reason}`);
    this.name = 'OidcTokenError';
  }
}

export class OidcTokenVerifier {
  private constructor(private readonly cfg: OidcConfig, private readonly keys: JWTVerifyGetKey) {}

  /** Reads a JWKS file now (throws when it is not usable); a URL is fetched on the first token. */
  static create(cfg: OidcConfig, opts: RemoteKeyOptions = {}): OidcTokenVerifier {
    const keys = cfg.jwks.startsWith('https://') ? remoteKeys(cfg.jwks, opts) : localKeys(cfg.jwks);
    return new OidcTokenVerifier(cfg, keys);
  }

  async verify(token: string): Promise<OidcIdentity> {
    if (token.length > maxTokenLength || token.split('.').length !== 3) throw new OidcTokenError('malformed');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: allowedAlgorithms,
        requiredClaims: ['exp'],
        clockTolerance: clockToleranceSeconds,
      }));
    } catch (err) {
      throw new OidcTokenError(reasonFor(err));
    }
    const identity = identityFrom(payload, this.cfg.claims);
    if (typeof identity === 'string') throw new OidcTokenError(identity);
    return identity;
  }
}

function reasonFor(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return 'not_yet_valid';
    if (err.claim === 'aud') return 'wrong_audience';
    if (err.claim === 'iss') return 'wrong_issuer';
    if (err.claim === 'exp') return err.reason === 'missing' ? 'missing_exp' : 'bad_claims';
    return 'bad_claims';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'ambiguous_key';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'jwks_unavailable';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) return 'malformed';
  // A JWKS URL that cannot be fetched (DNS, TLS, HTTP status) surfaces as a plain error.
  return 'jwks_unavailable';
}
