// The portal's OpenID Connect login (authorization code flow with PKCE):
//   GET /sso/oidc/start     → 303 to the identity provider, a cookie naming the pending login
//   GET /sso/oidc/callback  → checks the answer, exchanges the code, reads the person's
//                             claims and hands the identity to `onIdentity`
// Every failure is audited and answered with a page that says to start again;
// what the provider said is never shown beyond its error code.
import type { AuditSink } from '../audit/record.js';
import type { Config } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import type { Logger } from '../observe/log.js';
import { escapeHtml, page } from '../portal/html.js';
import { redirect, type PortalRequest, type PortalResponse, type Route } from '../portal/server.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import type { IdentityHandler } from './identity.js';
import { missingClaims, oidcIdentity } from './oidc-claims.js';
import { OidcClient } from './oidc-client.js';
import { PendingLogins } from './pending-logins.js';
import { AuthorizationResponseError, ResponseBodyError } from 'openid-client';

export const OIDC_START_PATH = '/sso/oidc/start';
export const OIDC_CALLBACK_PATH = '/sso/oidc/callback';
const COOKIE = 'pgveil_oidc';
/** How long a person may take at the identity provider. */
const PENDING_MAX_AGE_SECONDS = 600;
/** Most logins in progress at once (each a few hundred bytes). */
const PENDING_MAX_ENTRIES = 10_000;

export interface OidcLoginOptions {
  onIdentity: IdentityHandler;
  audit: AuditSink;
  logger: Logger;
  now?: () => number;
}

/** The redirect URI to register at the identity provider. */
export function oidcRedirectUri(config: Config): string {
  return `${config.portal!.publicUrl.replace(/\/+$/, '')}${OIDC_CALLBACK_PATH}`;
}

/** The path of publicUrl (empty at the root): a reverse proxy may serve the portal under a prefix, which the browser sees. */
function publicPrefix(config: Config): string {
  return new URL(config.portal!.publicUrl).pathname.replace(/\/+$/, '');
}

/** The OIDC routes for `config.sso.oidc`; opens the client secret now, so a wrong master key fails at start. */
export function oidcLoginRoutes(config: Config, opts: OidcLoginOptions): Route[] {
  const sso = config.sso!.oidc!;
  const secret = resolveSecret(sso.clientSecret, () => loadMasterKey(config.secrets), `${displayFile(config.file)}: sso.oidc.clientSecret`)!;
  const now = opts.now ?? Date.now;
  const oidc = new OidcClient(sso, secret, oidcRedirectUri(config), now);
  const pending = new PendingLogins({ maxAgeMs: PENDING_MAX_AGE_SECONDS * 1000, maxEntries: PENDING_MAX_ENTRIES, now });
  const { audit, logger } = opts;
  const prefix = publicPrefix(config);
  const cookie = (value: string, maxAgeSeconds: number) =>
    `${COOKIE}=${value}; Path=${prefix}/sso/oidc; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Lax`;

  const fail = (req: PortalRequest, reason: string, detail?: string): PortalResponse => {
    // A provider that cannot be reached is an error of the sign-in; everything else refuses this answer.
    const outcome = reason === 'provider_unreachable' ? 'error' : 'refused';
    audit.record({ event: 'sso_login', via: 'oidc', outcome, address: req.address, reason, ...(detail !== undefined && { detail }) });
    logger.warn('OIDC sign-in failed', { reason, ...(detail !== undefined && { detail }), address: req.address });
    const startUrl = `${prefix}${OIDC_START_PATH}`;
    return reason === 'provider_unreachable' ? unavailablePage(startUrl) : startAgainPage(startUrl, reason === 'idp_error' ? detail : undefined);
  };

  return [
    {
      method: 'GET',
      pattern: /^\/sso\/oidc\/start$/,
      async handle(req) {
        let started;
        try {
          started = await oidc.start();
        } catch (err) {
          logger.error('OIDC discovery failed', { issuer: sso.issuer, error: errorText(err) });
          return fail(req, 'provider_unreachable');
        }
        const key = pending.add({ state: started.state, nonce: started.nonce, codeVerifier: started.codeVerifier });
        return redirect(started.url.href, { 'set-cookie': cookie(key, PENDING_MAX_AGE_SECONDS) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/sso\/oidc\/callback$/,
      async handle(req) {
        const answer = await callback(req);
        // The pending login is used up whatever happened: the browser forgets its key.
        return withCookie(answer, cookie('', 0));
      },
    },
  ];

  async function callback(req: PortalRequest): Promise<PortalResponse> {
    const key = req.cookies.get(COOKIE);
    const login = key === undefined ? undefined : pending.take(key);
    const idpError = req.query.get('error');
    if (idpError !== null) return fail(req, 'idp_error', fixedWord(idpError));
    if (!login) return fail(req, 'bad_state', key === undefined ? 'no_cookie' : 'no_pending_login');
    if (req.query.get('state') !== login.state) return fail(req, 'bad_state', 'state_mismatch');
    try {
      await oidc.configuration();
    } catch (err) {
      logger.error('OIDC discovery failed', { issuer: sso.issuer, error: errorText(err) });
      return fail(req, 'provider_unreachable');
    }
    let finished;
    try {
      finished = await oidc.finish(req.query, login);
    } catch (err) {
      if (err instanceof AuthorizationResponseError) return fail(req, 'idp_error', fixedWord(err.error));
      // The token endpoint's error code (invalid_grant …) or the check that failed (a code word of openid-client).
      const detail = err instanceof ResponseBodyError ? err.error : (err as { code?: unknown }).code;
      // openid-client's messages are fixed texts (the values it compared stay in `cause`, not logged).
      logger.warn('OIDC code exchange failed', { error: errorText(err) });
      return fail(req, 'exchange_failed', typeof detail === 'string' ? fixedWord(detail) : undefined);
    }
    let userinfo: Record<string, unknown> | undefined;
    if (missingClaims(finished.claims, sso.claims).length > 0) {
      try {
        userinfo = await finished.userinfo();
      } catch (err) {
        logger.warn('OIDC userinfo request failed', { error: errorText(err) });
        return fail(req, 'userinfo_failed');
      }
    }
    const identity = oidcIdentity(finished.claims, userinfo, sso.claims);
    if (typeof identity === 'string') return fail(req, identity);
    return opts.onIdentity(identity, req);
  }
}

/** A word safe to write into the audit log and a page: letters, digits and _ only, else `other`. */
function fixedWord(text: string): string {
  return /^[A-Za-z0-9_]{1,64}$/.test(text) ? text : 'other';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The answer with one more Set-Cookie line (the handler may set its own). */
function withCookie(answer: PortalResponse, line: string): PortalResponse {
  const headers = { ...answer.headers };
  const existing = headers['set-cookie'];
  headers['set-cookie'] = existing === undefined ? line : [...(Array.isArray(existing) ? existing : [existing]), line];
  return { ...answer, headers };
}

function startAgainPage(startUrl: string, idpCode: string | undefined): PortalResponse {
  const said = idpCode === undefined ? '' : ` The identity provider answered <code>${escapeHtml(idpCode)}</code>.`;
  return {
    status: 400,
    html: page('Sign-in did not complete', `<p>The sign-in could not be completed.${said}</p>
<p><a href="${escapeHtml(startUrl)}">Start again</a></p>`),
  };
}

function unavailablePage(startUrl: string): PortalResponse {
  return {
    status: 503,
    html: page('Sign-in unavailable', `<p>The identity provider cannot be reached right now. Try again in a few minutes; if it keeps failing, tell your administrator.</p>
<p><a href="${escapeHtml(startUrl)}">Try again</a></p>`),
  };
}
