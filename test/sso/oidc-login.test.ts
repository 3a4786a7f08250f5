// OIDC sign-in on the portal against a real OpenID provider (oidc-provider,
// code flow, PKCE required, its login and consent forms filled by a test
// browser): the identity handed to the handler, the authorization request
// pgveil sends, the pending-login cookie, and claims read from userinfo.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCodeFlowProvider, type CodeFlowProvider } from '../helpers/oidc-code-provider.js';
import { callbackUrl, signInAtProvider, startTestPortal, type TestPortal } from './oidc-portal.js';

const people = {
  'dana@acme.com': { email: 'dana@acme.com', email_verified: true, org: 'acme', groups: ['analysts', 'hr'], name: 'Dana' },
  'solo@acme.com': { email: 'solo@acme.com', org: 'acme', groups: 'analysts' },
  'nobody@acme.com': { email: 'nobody@acme.com' },
  'kc@acme.com': { email: 'kc@acme.com', preferred_username: 'kc', org: 'acme', groups: ['g1'] },
};

let idp: CodeFlowProvider;
let portal: TestPortal;
test.before(async () => {
  idp = await startCodeFlowProvider({ redirectUri: callbackUrl, people });
  portal = await startTestPortal(idp);
});
test.after(async () => { await portal?.close(); await idp?.close(); });

test('a sign-in at the provider hands the handler the person named by the ID token claims, with org and groups', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  const page = await browser.request(back);
  assert.is(page.status, 200);
  assert.is(page.body, 'signed in as dana@acme.com');
  assert.equal(portal.identities.at(-1), { user: 'dana@acme.com', org: 'acme', groups: ['analysts', 'hr'], via: 'oidc' });
});

test('the authorization request carries PKCE S256, state, nonce, the redirect URI to register and the scopes the claims need', async () => {
  const start = await portal.browser().request('https://portal.test/sso/oidc/start');
  assert.is(start.status, 303);
  const url = new URL(String(start.headers.location));
  assert.is(`${url.origin}${url.pathname}`.startsWith(idp.issuer), true);
  const q = url.searchParams;
  assert.is(q.get('response_type'), 'code');
  assert.is(q.get('client_id'), 'pgveil-portal');
  assert.is(q.get('redirect_uri'), callbackUrl);
  assert.is(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{20,}$/);
  assert.match(q.get('nonce') ?? '', /^[A-Za-z0-9_-]{20,}$/);
  assert.not.equal(q.get('state'), q.get('nonce'));
  // org and groups are scopes this provider offers, so they are asked for; the claim `email` is a base scope.
  assert.equal((q.get('scope') ?? '').split(' ').sort(), ['email', 'groups', 'openid', 'org', 'profile']);
  assert.not.ok(url.search.includes('code_verifier'), 'the verifier stays on the portal');
});

test('the pending-login cookie is HttpOnly, Secure, SameSite=Lax, scoped to /sso/oidc and short-lived, and cleared by the callback', async () => {
  const browser = portal.browser();
  const start = await browser.request('https://portal.test/sso/oidc/start');
  const line = String(start.headers['set-cookie']);
  assert.match(line, /^pgveil_oidc=[A-Za-z0-9_-]{43}; /);
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/sso/oidc', 'Max-Age=600']) assert.ok(line.split('; ').includes(attr), `cookie has ${attr}: ${line}`);
  const back = await signInAtProvider(browser, 'dana@acme.com');
  const page = await browser.request(back);
  assert.match(String(page.headers['set-cookie']), /^pgveil_oidc=; Path=\/sso\/oidc; Max-Age=0;/);
});

test('a groups claim that is one string is one group', async () => {
  const browser = portal.browser();
  await browser.request(await signInAtProvider(browser, 'solo@acme.com'));
  assert.equal(portal.identities.at(-1), { user: 'solo@acme.com', org: 'acme', groups: ['analysts'], via: 'oidc' });
});

test('a person without org or groups claims reaches the handler with no org and no groups (the handler decides)', async () => {
  const browser = portal.browser();
  await browser.request(await signInAtProvider(browser, 'nobody@acme.com'));
  assert.equal(portal.identities.at(-1), { user: 'nobody@acme.com', groups: [], via: 'oidc' });
});

test('the handler refusing a person is what the browser gets', async () => {
  const refusing = await startTestPortal(idp, { refuse: ['dana@acme.com'] });
  try {
    const browser = refusing.browser();
    const page = await browser.request(await signInAtProvider(browser, 'dana@acme.com'));
    assert.is(page.status, 403);
    assert.is(page.body, 'this account has no database access');
  } finally { await refusing.close(); }
});

test('configured claim names (another user claim) are read, and a plain client secret works too', async () => {
  const other = await startTestPortal(idp, { claims: '{ user: preferred_username }', plainSecret: true });
  try {
    const browser = other.browser();
    await browser.request(await signInAtProvider(browser, 'kc@acme.com'));
    assert.equal(other.identities.at(-1), { user: 'kc', org: 'acme', groups: ['g1'], via: 'oidc' });
  } finally { await other.close(); }
});

test('claims the ID token lacks are read from userinfo (a provider that keeps them out of the ID token)', async () => {
  const lean = await startCodeFlowProvider({ redirectUri: callbackUrl, people, claimsInIdToken: false });
  const leanPortal = await startTestPortal(lean);
  try {
    const browser = leanPortal.browser();
    const page = await browser.request(await signInAtProvider(browser, 'dana@acme.com'));
    assert.is(page.status, 200);
    assert.equal(leanPortal.identities.at(-1), { user: 'dana@acme.com', org: 'acme', groups: ['analysts', 'hr'], via: 'oidc' });
  } finally { await leanPortal.close(); await lean.close(); }
});

test('discovery is fetched once and kept for later sign-ins', async () => {
  const before = idp.discoveries();
  for (const person of ['dana@acme.com', 'solo@acme.com']) {
    const browser = portal.browser();
    assert.is((await browser.request(await signInAtProvider(browser, person))).status, 200);
  }
  assert.is(idp.discoveries(), before);
});

test('the audit log and the log hold no code, state, nonce, verifier, client secret or ID token', async () => {
  const browser = portal.browser();
  const start = await browser.request('https://portal.test/sso/oidc/start');
  const q = new URL(String(start.headers.location)).searchParams;
  const cookieKey = browser.cookie('portal.test', 'pgveil_oidc')!;
  const loginForm = await browser.follow(String(start.headers.location));
  const consent = await browser.submitForm(loginForm, { login: 'dana@acme.com', password: 'x' }, (l) => l.startsWith(callbackUrl));
  const back = consent.status === 303 && String(consent.headers.location).startsWith(callbackUrl) ? consent : await browser.submitForm(consent, {}, (l) => l.startsWith(callbackUrl));
  const code = new URL(String(back.headers.location)).searchParams.get('code')!;
  await browser.request(String(back.headers.location));
  const text = JSON.stringify(portal.audit) + JSON.stringify(portal.logs);
  for (const secret of [code, q.get('state')!, q.get('nonce')!, q.get('code_challenge')!, 'portal-client-secret-for-tests', cookieKey]) {
    assert.not.ok(text.includes(secret), 'a secret reached the audit log or the log');
  }
});

test.run();
