// OIDC sign-in bad input: every callback that is not the answer to a login
// this browser started on this portal, every ID token a correct provider
// would not issue, and a provider that is down. Each gets the "start again"
// page (or "unavailable"), an sso_login failure record, and never reaches
// the handler.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { calculatePKCECodeChallenge, randomPKCECodeVerifier } from 'openid-client';
import { otherClient, startCodeFlowProvider, type CodeFlowProvider } from '../helpers/oidc-code-provider.js';
import { callbackUrl, failures, signInAtProvider, startTestPortal, type TestPortal } from './oidc-portal.js';

const people = {
  'dana@acme.com': { email: 'dana@acme.com', org: 'acme', groups: ['analysts'] },
  'noname@acme.com': { org: 'acme' },
  'badgroups@acme.com': { email: 'badgroups@acme.com', org: 'acme', groups: 7 },
  'unverified@acme.com': { email: 'dana@acme.com', email_verified: false, org: 'acme' },
};

let idp: CodeFlowProvider;
let portal: TestPortal;
let clock = Date.now();
test.before(async () => {
  idp = await startCodeFlowProvider({ redirectUri: callbackUrl, people });
  portal = await startTestPortal(idp, { now: () => clock });
});
test.after(async () => { await portal?.close(); await idp?.close(); });

/** The callback's answer is the start-again page, one failure record with this reason (and detail) was added, the handler saw nobody. */
async function refused(run: () => Promise<{ status: number; body: string }>, reason: string, detail?: string): Promise<string> {
  const seen = portal.identities.length;
  const before = failures(portal).length;
  const page = await run();
  assert.is(page.status, 400, page.body);
  assert.match(page.body, /could not be completed/);
  assert.match(page.body, /href="\/sso\/oidc\/start"/, 'the page offers to start again');
  const added = failures(portal).slice(before);
  assert.is(added.length, 1);
  assert.is(added[0].reason, reason);
  if (detail !== undefined) assert.is(added[0].detail, detail);
  assert.is(added[0].via, 'oidc');
  assert.is(added[0].address, '127.0.0.1');
  assert.is(portal.identities.length, seen, 'the handler was not called');
  return page.body;
}

test('a callback without the pending-login cookie is refused', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  await refused(() => portal.browser().request(back), 'bad_state', 'no_cookie');
});

test('a callback with a cookie that names no pending login is refused', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  browser.setCookie('portal.test', 'pgveil_oidc', 'x'.repeat(43), '/sso/oidc');
  await refused(() => browser.request(back), 'bad_state', 'no_pending_login');
});

test("a callback carrying another login's state (the cookie of a second login in this browser) is refused, and that login is used up", async () => {
  const victim = portal.browser();
  const back = await signInAtProvider(victim, 'dana@acme.com');
  // Another login started in a browser whose cookie is then sent with the first login's answer.
  const attacker = portal.browser();
  await attacker.request('https://portal.test/sso/oidc/start');
  const key = attacker.cookie('portal.test', 'pgveil_oidc')!;
  attacker.setCookie('portal.test', 'pgveil_oidc', key, '/sso/oidc');
  await refused(() => attacker.request(back), 'bad_state', 'state_mismatch');
  // The victim's own cookie still works for its own answer once.
  assert.is((await victim.request(back)).status, 200);
});

test('a replayed callback (same URL, same cookie) is refused: a pending login is taken once', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  const key = browser.cookie('portal.test', 'pgveil_oidc')!;
  assert.is((await browser.request(back)).status, 200);
  browser.setCookie('portal.test', 'pgveil_oidc', key, '/sso/oidc');
  await refused(() => browser.request(back), 'bad_state', 'no_pending_login');
});

test('a login finished after the pending login expired (10 minutes) is refused', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  clock += 601_000;
  try {
    await refused(() => browser.request(back), 'bad_state', 'no_pending_login');
  } finally { clock -= 601_000; }
});

test("the provider's error answer (the person cancels) is refused, naming only the error code", async () => {
  const browser = portal.browser();
  const start = await browser.request('https://portal.test/sso/oidc/start');
  const loginForm = await browser.follow(String(start.headers.location));
  const cancel = /href="([^"]*\/abort)"/.exec(loginForm.body)?.[1];
  assert.ok(cancel, 'the provider offers to cancel');
  const back = await browser.follow(new URL(cancel!, loginForm.url).href, {}, (l) => l.startsWith(callbackUrl));
  const location = String(back.headers.location);
  assert.is(new URL(location).searchParams.get('error'), 'access_denied');
  const body = await refused(() => browser.request(location), 'idp_error', 'access_denied');
  assert.match(body, /<code>access_denied<\/code>/);
  assert.not.match(body, /End-User aborted/, "the provider's description is not shown");
});

test('an error code that is not a plain word is neither shown nor audited as sent', async () => {
  const browser = portal.browser();
  await browser.request('https://portal.test/sso/oidc/start');
  const body = await refused(() => browser.request(`${callbackUrl}?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=secret+detail`), 'idp_error', 'other');
  assert.not.match(body, /script|secret detail/);
});

test('a code issued to another client is refused by the token endpoint', async () => {
  // The other application's own login at the provider, with its own PKCE.
  const browser = portal.browser();
  const verifier = randomPKCECodeVerifier();
  const auth = new URL(`${idp.issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: otherClient.id, redirect_uri: otherClient.redirectUri, response_type: 'code', scope: 'openid email',
    code_challenge: await calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'other-state', nonce: 'other-nonce',
  }).toString();
  const loginForm = await browser.follow(auth.href);
  const toOther = (l: string) => l.startsWith(otherClient.redirectUri);
  let page = await browser.submitForm(loginForm, { login: 'dana@acme.com', password: 'x' }, toOther);
  if (!toOther(String(page.headers.location ?? ''))) page = await browser.submitForm(page, {}, toOther);
  const otherCode = new URL(String(page.headers.location)).searchParams.get('code');
  assert.ok(otherCode);
  // Fed to the portal's callback with the state of a login the portal did start.
  const start = await browser.request('https://portal.test/sso/oidc/start');
  const state = new URL(String(start.headers.location)).searchParams.get('state')!;
  const forged = `${callbackUrl}?${new URLSearchParams({ code: otherCode!, state, iss: idp.issuer })}`;
  await refused(() => browser.request(forged), 'exchange_failed', 'invalid_grant');
});

/** Signs in with the provider's token answers altered by `tamper`; returns the refusal's detail. */
async function withTamperedIdToken(tamper: Parameters<CodeFlowProvider['tamperIdToken']>[0]): Promise<string | undefined> {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'dana@acme.com');
  idp.tamperIdToken(tamper);
  try {
    await refused(() => browser.request(back), 'exchange_failed');
  } finally { idp.tamperIdToken(undefined); }
  return failures(portal).at(-1)?.detail;
}

test('an ID token with another nonce is refused', async () => {
  const detail = await withTamperedIdToken((p) => ({ payload: { ...p, nonce: 'not-the-one-sent' } }));
  assert.match(detail ?? '', /^[A-Z_]+$/, 'a fixed word of the client library');
});

test('an ID token for another audience is refused', async () => {
  await withTamperedIdToken((p) => ({ payload: { ...p, aud: 'other-app' } }));
});

test('an ID token from another issuer is refused', async () => {
  await withTamperedIdToken((p) => ({ payload: { ...p, iss: 'https://evil.test' } }));
});

test('an expired ID token is refused', async () => {
  const past = Math.floor(Date.now() / 1000) - 3600;
  await withTamperedIdToken((p) => ({ payload: { ...p, iat: past - 60, exp: past } }));
});

test('an ID token signed with a key the provider never published is refused (the signature is checked, not only TLS)', async () => {
  await withTamperedIdToken((p) => ({ payload: p, signWithUnpublishedKey: true }));
});

test('an ID token without the user claim is refused (userinfo has none either)', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'noname@acme.com');
  await refused(() => browser.request(back), 'missing_user_claim');
});

test('an email the provider marks unverified is refused as the user name (it could be anyone\'s)', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'unverified@acme.com');
  await refused(() => browser.request(back), 'unverified_email');
});

test('a groups claim that is neither a string nor a list of strings is refused', async () => {
  const browser = portal.browser();
  const back = await signInAtProvider(browser, 'badgroups@acme.com');
  await refused(() => browser.request(back), 'bad_groups_claim');
});

test('a day-old discovery document is fetched again; while the provider is down the kept one is used', async () => {
  const browser = portal.browser();
  assert.is((await browser.request('https://portal.test/sso/oidc/start')).status, 303);
  const fetched = idp.discoveries();
  clock += 25 * 3600_000;
  try {
    idp.setDown(true);
    assert.is((await browser.request('https://portal.test/sso/oidc/start')).status, 303, 'the kept document still serves');
    idp.setDown(false);
    assert.is((await browser.request('https://portal.test/sso/oidc/start')).status, 303);
    assert.is(idp.discoveries(), fetched + 1, 'fetched again once the provider answers');
    assert.is((await browser.request('https://portal.test/sso/oidc/start')).status, 303);
    assert.is(idp.discoveries(), fetched + 1, 'and kept again');
  } finally { idp.setDown(false); clock -= 25 * 3600_000; }
});

test('a provider that is down gives a clear 503 page, the portal keeps serving, and sign-in works once it is back', async () => {
  const down = await startCodeFlowProvider({ redirectUri: callbackUrl, people });
  down.setDown(true);
  const other = await startTestPortal(down);
  try {
    const browser = other.browser();
    for (let i = 0; i < 2; i++) {
      const page = await browser.request('https://portal.test/sso/oidc/start');
      assert.is(page.status, 503);
      assert.match(page.body, /cannot be reached right now/);
      assert.not.match(page.body, /127\.0\.0\.1|ECONN|fetch/, 'no technical detail on the page');
    }
    assert.equal(failures(other).map((f) => f.reason), ['provider_unreachable', 'provider_unreachable']);
    assert.ok(other.logs.some((l) => l.msg === 'OIDC discovery failed' && l.level === 'error'), 'the operator sees why in the log');
    // Still serving: a callback is answered (and refused) as usual.
    assert.is((await browser.request(`${callbackUrl}?code=x&state=y`)).status, 400);
    down.setDown(false);
    const back = await signInAtProvider(browser, 'dana@acme.com');
    assert.is((await browser.request(back)).status, 200);
    assert.equal(other.identities.map((i) => i.user), ['dana@acme.com']);
  } finally { await other.close(); await down.close(); }
});

test.run();
