// A real OpenID provider (oidc-provider) for browser logins: authorization
// code flow, PKCE required, its development login and consent forms (any
// login name is accepted; `people` decides what claims that name gets), over
// https with a test certificate. Two clients: the portal, and another
// application whose codes the portal must not accept.
//
// For the cases a correct provider never produces, the token endpoint's ID
// token can be replaced on the way out (re-signed with the provider's key,
// or with a key it never published), and the whole provider can be switched
// off (every request answered 503).
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { rsaCert, type TestCert } from '../auth/test-certs.js';

export const portalClient = { id: 'pgveil-portal', secret: 'portal-client-secret-for-tests' };
export const otherClient = { id: 'other-app', secret: 'other-app-secret-for-tests', redirectUri: 'https://other.test/callback' };

/** How the next token responses' ID token is altered (a misbehaving or hostile provider). */
export type IdTokenTamper = (payload: JWTPayload) => { payload: JWTPayload; signWithUnpublishedKey?: boolean };

export interface CodeFlowProviderOptions {
  /** The portal's callback, registered for the portal client. */
  redirectUri: string;
  /** Claims per login name (besides sub = the login name). A name not listed gets only sub. */
  people: Record<string, Record<string, unknown>>;
  /** true: the scopes' claims go into the ID token; false (oidc-provider's default): only userinfo has them. */
  claimsInIdToken?: boolean;
}

export interface CodeFlowProvider {
  issuer: string;
  cert: TestCert;
  /** Answer every request with 503 (true) or serve again (false). */
  setDown(down: boolean): void;
  /** Alter the ID token of the token endpoint's answers until set to undefined. */
  tamperIdToken(tamper: IdTokenTamper | undefined): void;
  /** How many discovery documents were served. */
  discoveries(): number;
  close(): Promise<void>;
}

async function signingKey(kid: string): Promise<{ privateKey: CryptoKey; privateJwk: JWK }> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}

export async function startCodeFlowProvider(opts: CodeFlowProviderOptions): Promise<CodeFlowProvider> {
  const cert = rsaCert('test identity provider');
  const published = await signingKey('published-key');
  const unpublished = await signingKey('published-key'); // same kid, key the provider never published
  let handler: ReturnType<Provider['callback']> = (_req, res) => { res.statusCode = 503; res.end(); };
  let down = false;
  let tamper: IdTokenTamper | undefined;
  let discoveries = 0;

  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    if (down) { res.statusCode = 503; res.end('down'); return; }
    if (req.url?.startsWith('/.well-known/openid-configuration')) discoveries++;
    if (tamper && req.method === 'POST' && req.url === '/token') rewriteIdToken(res, tamper, published.privateKey, unpublished.privateKey);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: [
      { client_id: portalClient.id, client_secret: portalClient.secret, redirect_uris: [opts.redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: otherClient.id, client_secret: otherClient.secret, redirect_uris: [otherClient.redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
    ],
    jwks: { keys: [published.privateJwk] },
    cookies: { keys: ['code-flow-cookie-key'] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], org: ['org'], groups: ['groups'] },
    conformIdTokenClaims: !(opts.claimsInIdToken ?? true),
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, ...(opts.people[id] ?? {}) }),
    }),
  });
  handler = provider.callback();

  return {
    issuer,
    cert,
    setDown: (value) => { down = value; },
    tamperIdToken: (value) => { tamper = value; },
    discoveries: () => discoveries,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Replaces the id_token of the JSON body the provider is about to send (Koa ends the response with the whole body). */
function rewriteIdToken(res: ServerResponse, tamper: IdTokenTamper, published: CryptoKey, unpublished: CryptoKey): void {
  const end = res.end.bind(res) as (body?: unknown) => ServerResponse;
  (res as unknown as { end: (body?: unknown) => void }).end = (body?: unknown) => {
    void (async () => {
      let text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
      const json = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
      if (json && typeof json.id_token === 'string') {
        const altered = tamper(decodeJwt(json.id_token));
        json.id_token = await new SignJWT(altered.payload)
          .setProtectedHeader({ alg: 'RS256', kid: 'published-key' })
          .sign(altered.signWithUnpublishedKey ? unpublished : published);
        text = JSON.stringify(json);
        res.setHeader('content-length', Buffer.byteLength(text));
      }
      end(text ?? body);
    })();
  };
}
