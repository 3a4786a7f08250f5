// A real OpenID provider (oidc-provider) served over https with a test
// certificate, issuing RFC 9068 JWT access tokens for the audience "pgveil"
// by the client_credentials grant. Tokens the provider would never issue
// (expired, wrong audience …) are signed with jose using its current key.
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { SignJWT, exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { rsaCert } from '../auth/test-certs.js';

export const testAudience = 'pgveil';
const resource = 'https://pgveil.test/';
const client = { id: 'bi-tool', secret: 'bi-tool-secret-for-tests' };

interface SigningKey { kid: string; privateKey: CryptoKey; privateJwk: JWK; publicJwk: JWK }

export interface TestOidcProvider {
  issuer: string;
  jwksUrl: string;
  /** PEM of the provider's self-signed certificate: the CA to trust for jwksUrl. */
  ca: string;
  /** A token issued by the provider itself (token endpoint), carrying `claims` besides its own. */
  issueToken(claims: Record<string, unknown>): Promise<string>;
  /** A JWT signed with the provider's current key: any payload and header the test wants. */
  signToken(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** The provider's public keys as a JWKS document (for a JWKS file). */
  publicJwks(): JSONWebKeySet;
  /** How many times the JWKS has been fetched so far. */
  jwksFetches(): number;
  /** The provider starts signing with a new key (new kid); the old one stays published. Returns the new kid. */
  rotateKey(): Promise<string>;
  close(): Promise<void>;
}

let kidCounter = 0;
async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-key-${++kidCounter}-${Date.now()}`;
  const extra = { kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, privateJwk: { ...(await exportJWK(privateKey)), ...extra }, publicJwk: { ...(await exportJWK(publicKey)), ...extra } };
}

export async function startOidcProvider(): Promise<TestOidcProvider> {
  const cert = rsaCert('127.0.0.1');
  let handler: ReturnType<Provider['callback']> = (_req, res) => { res.statusCode = 503; res.end(); };
  let jwksFetches = 0;
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    if (req.url === '/jwks') jwksFetches++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Keys newest first: the provider signs with the first one for the algorithm.
  const keys: SigningKey[] = [await newKey()];
  // Claims for the token being requested; issueToken runs one request at a time.
  let pendingClaims: Record<string, unknown> = {};
  let queue: Promise<unknown> = Promise.resolve();
  const install = () => {
    const provider = new Provider(issuer, {
      clients: [{ client_id: client.id, client_secret: client.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
      jwks: { keys: keys.map((k) => k.privateJwk) },
      cookies: { keys: ['test-cookie-key'] },
      ttl: { ClientCredentials: 600 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          getResourceServerInfo: () => ({ scope: 'db', audience: testAudience, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      extraTokenClaims: () => pendingClaims,
    });
    handler = provider.callback();
  };
  install();

  const post = (path: string, body: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(`${issuer}${path}`, {
      method: 'POST', ca: cert.certPem,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    ca: cert.certPem,
    issueToken(claims) {
      // One request at a time, so each token gets the claims it was asked with.
      const issued = queue.then(async () => {
        pendingClaims = claims;
        try {
          const res = await post('/token', new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'db' }).toString());
          if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${res.text}`);
          return (JSON.parse(res.text) as { access_token: string }).access_token;
        } finally {
          pendingClaims = {};
        }
      });
      queue = issued.catch(() => undefined);
      return issued;
    },
    async signToken(payload, header = {}) {
      const key = keys[0];
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);
    },
    jwksFetches: () => jwksFetches,
    publicJwks: () => ({ keys: keys.map((k) => k.publicJwk) }),
    async rotateKey() {
      keys.unshift(await newKey());
      install();
      return keys[0].kid;
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
