// pgveil as an OpenID Connect client of `sso.oidc.issuer`, through
// openid-client: discovery (kept, fetched again when it failed or is a day
// old), the authorization URL with PKCE (S256), state and nonce, and the code
// exchange, in which openid-client checks the ID token's signature (against
// the provider's published keys), iss, aud, nonce and exp.
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';
import type { SsoOidcConfig } from '../config/types.js';
import { fetchTrusting } from './https-fetch.js';

/** Seconds an identity provider request may take. */
const REQUEST_TIMEOUT_SECONDS = 10;
/** A discovery document older than this is fetched again (the old one stays in use if that fails). */
const DISCOVERY_MAX_AGE_MS = 24 * 3600_000;
/** Scopes always asked for: the ID token, the address and the profile. */
const BASE_SCOPES = ['openid', 'email', 'profile'];

export interface StartedLogin { url: URL; state: string; nonce: string; codeVerifier: string }

/** What the code exchange proved: the ID token's claims, and the access token to ask userinfo for more. */
export interface FinishedLogin { claims: Record<string, unknown>; userinfo: () => Promise<Record<string, unknown>> }

export class OidcClient {
  private discovered?: { config: client.Configuration; at: number };
  private discovering?: Promise<client.Configuration>;

  /** `clientSecret` already opened (not sealed). */
  constructor(
    private readonly sso: SsoOidcConfig,
    private readonly clientSecret: string,
    readonly redirectUri: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The provider's configuration: the kept one, or discovered now. Throws when discovery fails and none is kept. */
  async configuration(): Promise<client.Configuration> {
    const kept = this.discovered;
    if (kept && this.now() - kept.at < DISCOVERY_MAX_AGE_MS) return kept.config;
    // Concurrent requests share one discovery; a failed one is tried again by the next request.
    this.discovering ??= this.discover().finally(() => { this.discovering = undefined; });
    try {
      return await this.discovering;
    } catch (err) {
      if (kept) return kept.config;
      throw err;
    }
  }

  private async discover(): Promise<client.Configuration> {
    const ca = this.sso.ca === undefined ? undefined : readFileSync(this.sso.ca);
    const config = await client.discovery(
      new URL(this.sso.issuer), this.sso.clientId, this.clientSecret, client.ClientSecretBasic(this.clientSecret),
      {
        timeout: REQUEST_TIMEOUT_SECONDS,
        ...(ca !== undefined && { [client.customFetch]: fetchTrusting(ca) }),
        // Check the ID token's signature too, not only the TLS of the token endpoint.
        execute: [client.enableNonRepudiationChecks],
      },
    );
    this.discovered = { config, at: this.now() };
    return config;
  }

  /** Where to send the browser, and what the callback must check. */
  async start(): Promise<StartedLogin> {
    const config = await this.configuration();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: this.scopes(config).join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, state, nonce, codeVerifier };
  }

  /**
   * The base scopes, plus each configured claim name that the provider lists
   * as a scope (e.g. `groups` at Okta, `organization` at Keycloak): asking for
   * a scope it does not offer would make some providers refuse the login.
   */
  scopes(config: client.Configuration): string[] {
    const offered = new Set(config.serverMetadata().scopes_supported ?? []);
    const wanted = [this.sso.claims.user, this.sso.claims.org, this.sso.claims.groups].filter((name) => offered.has(name));
    return [...new Set([...BASE_SCOPES, ...wanted])];
  }

  /**
   * Exchanges the code of the callback URL (`query` as received) for tokens.
   * Throws client.AuthorizationResponseError for an `error=` answer,
   * client.ResponseBodyError when the token endpoint refuses, other errors
   * for a state, PKCE or ID token check that fails.
   */
  async finish(query: URLSearchParams, pending: { state: string; nonce: string; codeVerifier: string }): Promise<FinishedLogin> {
    const config = await this.configuration();
    const current = new URL(this.redirectUri);
    current.search = query.toString();
    const tokens = await client.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('no ID token');
    return {
      claims: { ...claims },
      // openid-client checks that userinfo speaks for the ID token's subject.
      userinfo: async () => ({ ...await client.fetchUserInfo(config, tokens.access_token, claims.sub) }),
    };
  }
}
