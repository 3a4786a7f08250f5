// SAML 2.0 login on the portal (SP-initiated; node-saml does every XML and
// signature check):
//   GET  /sso/saml/start     303 to the IdP with an AuthnRequest (HTTP-Redirect binding)
//   POST /sso/saml/acs       the IdP's Response (HTTP-POST binding) → the identity handler
//   GET  /sso/saml/metadata  this service provider's metadata for the IdP
// A response is accepted only when its assertion is signed by `idpCert`, is
// meant for `issuer` (audience), is within its validity times, and answers
// the request this browser started (InResponseTo = the id in its cookie, taken
// once: a replayed response finds nothing).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SAML, ValidateInResponseTo, type IdpCertCallback, type Profile, type SamlConfig } from '@node-saml/node-saml';
import type { AuditSink } from '../audit/record.js';
import type { Config, SsoSamlConfig } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import { escapeHtml, page } from '../portal/html.js';
import { redirect, type PortalRequest, type PortalResponse, type Route } from '../portal/server.js';
import type { IdentityHandler } from './identity.js';
import { idpCertificates } from './saml-idp-cert.js';
import { samlIdentity } from './saml-identity.js';
import { SamlRequestCache } from './saml-request-cache.js';

export const SAML_START_PATH = '/sso/saml/start';
export const SAML_ACS_PATH = '/sso/saml/acs';
export const SAML_METADATA_PATH = '/sso/saml/metadata';

/** Largest ACS body: a signed response with a certificate and many groups stays far below it. */
export const SAML_MAX_BODY_BYTES = 256 * 1024;
/** How long a started login may take at the IdP (the request id and its cookie live this long). */
export const SAML_REQUEST_MINUTES = 10;
/** Clock difference tolerated against the IdP's NotBefore / NotOnOrAfter times. */
export const SAML_CLOCK_SKEW_MS = 60_000;
/** Binds the response to the browser that started the login; sent cross-site by the IdP's form post, hence SameSite=None. */
export const SAML_REQUEST_COOKIE = 'pgveil_saml_request';
/** How an unusable idpCert file's error starts (node-saml passes it through). */
const IDP_CERT_PROBLEM = 'sso.saml.idpCert:';

export interface SamlLoginDeps {
  onIdentity: IdentityHandler;
  audit: AuditSink;
  logger: Logger;
  /** The clock of pending requests (tests move it); node-saml checks assertion times against the real clock. */
  now?: () => number;
}

/** Why a response was refused, as the audit record says it (a fixed word, never a value from the response). */
export type SamlRefusal = 'idp_cert' | 'no_request' | 'no_response' | 'signature' | 'in_response_to' | 'expired' | 'audience' | 'recipient' | 'idp_status' | 'malformed' | 'other_browser' | 'missing_user' | 'bad_attribute';

export function samlLoginRoutes(config: Config, deps: SamlLoginDeps): Route[] {
  const saml = config.sso!.saml!;
  const now = deps.now ?? Date.now;
  const requests = new SamlRequestCache(SAML_REQUEST_MINUTES * 60_000, now);
  const acsUrl = callbackUrl(config);
  // Behind a reverse proxy that serves the portal under a path, the browser sees that prefix: the cookie and links carry it.
  const prefix = new URL(config.portal!.publicUrl).pathname.replace(/\/+$/, '');
  const cookie = (value: string, maxAge: number) => `${SAML_REQUEST_COOKIE}=${value}; Path=${prefix}/sso/saml; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=None`;
  const clearCookie = () => cookie('', 0);
  const options = samlOptions(saml, acsUrl, requests);
  const metadata = new SAML(options).generateServiceProviderMetadata(null, null);
  let queue: Promise<unknown> = Promise.resolve();

  const refuse = (reason: SamlRefusal, req: PortalRequest, error?: string): PortalResponse => {
    // An unreadable idpCert is this side's fault: an error, not a refusal of what the browser sent.
    const outcome = reason === 'idp_cert' ? 'error' : 'refused';
    deps.audit.record({ event: 'sso_login', via: 'saml', outcome, reason, address: req.address });
    const fields = { reason, address: req.address, ...(error ? { error: error.slice(0, 300) } : {}) };
    if (outcome === 'error') deps.logger.error('SAML login failed: the identity provider certificate is unusable', fields);
    else deps.logger.warn('SAML login refused', fields);
    return startAgainPage(prefix + SAML_START_PATH, clearCookie());
  };

  /** The verified assertion's profile, or why the post is refused; the request ids it names are taken either way. */
  async function check(req: PortalRequest): Promise<{ profile: Profile } | { refused: SamlRefusal; error?: string }> {
    const requestId = req.cookies.get(SAML_REQUEST_COOKIE) ?? '';
    if (!/^_[0-9a-f]{40}$/.test(requestId)) return { refused: 'no_request' };
    const response = req.form.get('SAMLResponse') ?? '';
    if (response === '') return { refused: 'no_response' };
    let profile: Profile | null;
    try {
      ({ profile } = await new SAML(options).validatePostResponseAsync({ SAMLResponse: response }));
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      return { refused: classify(error), error };
    } finally {
      await requests.removeAsync(requestId);
    }
    if (!profile) return { refused: 'malformed' };
    if (typeof profile.inResponseTo === 'string') await requests.removeAsync(profile.inResponseTo);
    if (profile.inResponseTo !== requestId) return { refused: 'other_browser' };
    if (!recipientIs(profile, acsUrl)) return { refused: 'recipient' };
    return { profile };
  }

  async function acs(req: PortalRequest): Promise<PortalResponse> {
    // Checked one at a time, so two posts of one response cannot both find its request id.
    const checked = queue.then(() => check(req));
    queue = checked.catch(() => {});
    const result = await checked;
    if ('refused' in result) return refuse(result.refused, req, result.error);
    const found = samlIdentity(result.profile, saml.attributes);
    if ('problem' in found) return refuse(found.problem, req);
    const answer = await deps.onIdentity(found.identity, req);
    return { ...answer, headers: { ...answer.headers, 'set-cookie': clearCookie() } };
  }

  return [
    {
      method: 'GET',
      pattern: /^\/sso\/saml\/start$/,
      async handle() {
        const id = `_${randomBytes(20).toString('hex')}`;
        const url = await new SAML({ ...options, generateUniqueId: () => id }).getAuthorizeUrlAsync('', undefined, {});
        return redirect(url, { 'set-cookie': cookie(id, SAML_REQUEST_MINUTES * 60) });
      },
    },
    {
      method: 'POST',
      pattern: /^\/sso\/saml\/acs$/,
      maxBodyBytes: SAML_MAX_BODY_BYTES,
      handle: acs,
    },
    {
      method: 'GET',
      pattern: /^\/sso\/saml\/metadata$/,
      handle: () => ({ status: 200, html: metadata, headers: { 'content-type': 'application/samlmetadata+xml' } }),
    },
  ];
}

/** `portal.publicUrl` + the ACS path: what the IdP posts to and what the assertion's Recipient names. */
export function callbackUrl(config: Config): string {
  return config.portal!.publicUrl.replace(/\/+$/, '') + SAML_ACS_PATH;
}

function samlOptions(saml: SsoSamlConfig, acsUrl: string, requests: SamlRequestCache): SamlConfig {
  return {
    entryPoint: saml.entryPoint,
    issuer: saml.issuer,
    audience: saml.issuer,
    callbackUrl: acsUrl,
    idpCert: idpCertsFrom(saml.idpCert),
    // The assertion itself must carry the IdP's signature; a signature on the
    // Response envelope alone is not enough, and an unsigned envelope around a
    // signed assertion is fine (what Okta and Keycloak send by default).
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: requests.maxAgeMs,
    cacheProvider: requests,
    acceptedClockSkewMs: SAML_CLOCK_SKEW_MS,
    // Let the IdP choose the NameID format and how the person authenticates (its MFA rules apply).
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    signatureAlgorithm: 'sha256',
  };
}

/** Reads the certificate file at each check, so a replaced file applies without a restart. */
function idpCertsFrom(file: string): IdpCertCallback {
  return (callback) => {
    readFile(file, 'utf8').then((text) => callback(null, idpCertificates(text))).catch((err: Error) => callback(new Error(`${IDP_CERT_PROBLEM} ${err.message}`)));
  };
}

/**
 * True when a bearer SubjectConfirmation of the verified assertion names this
 * ACS URL as its Recipient (node-saml checks its times and InResponseTo, not
 * the Recipient): an assertion the IdP made for another service is refused.
 */
function recipientIs(profile: Profile, acsUrl: string): boolean {
  const assertion = profile.getAssertion?.() as { Assertion?: { Subject?: Array<{ SubjectConfirmation?: Array<{ $?: { Method?: string }; SubjectConfirmationData?: Array<{ $?: { Recipient?: string } }> }> }> } } | undefined;
  const confirmations = assertion?.Assertion?.Subject?.[0]?.SubjectConfirmation ?? [];
  return confirmations.some((c) => c.$?.Method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer'
    && (c.SubjectConfirmationData ?? []).some((d) => d.$?.Recipient === acsUrl));
}

/** node-saml's error message → a fixed word for the audit record. */
function classify(message: string): SamlRefusal {
  if (message.startsWith(IDP_CERT_PROBLEM)) return 'idp_cert';
  if (/signature/i.test(message)) return 'signature';
  if (/InResponseTo/i.test(message)) return 'in_response_to';
  if (/expired|not yet valid|subject confirmation/i.test(message)) return 'expired';
  if (/audience/i.test(message)) return 'audience';
  if (/SAML provider returned/i.test(message)) return 'idp_status';
  return 'malformed';
}

function startAgainPage(startUrl: string, clearCookie: string): PortalResponse {
  return {
    status: 400,
    html: page('Sign-in did not work', `<p>The sign-in could not be completed. Start again from the beginning.</p>
<p><a href="${escapeHtml(startUrl)}">Sign in again</a></p>`),
    headers: { 'set-cookie': clearCookie },
  };
}
