// What a browser does in a SAML login, with Node's fetch: GET the portal's
// start page, keep its cookie, follow the redirect to the IdP, read the
// IdP's auto-posting form and POST its SAMLResponse to the portal's ACS.
import * as assert from 'uvu/assert';
import { trustingFetch } from '../reset/portal-fetch.js';
import type { TestCert } from '../auth/test-certs.js';

export type Fetch = Awaited<ReturnType<typeof trustingFetch>>;

export interface SamlBrowser {
  /** Starts a login and returns the IdP's form: its action (on the real portal address) and SAMLResponse. */
  start(): Promise<{ acs: string; samlResponse: string }>;
  /** Posts a SAMLResponse to the ACS as the IdP's form does, with this browser's cookies. */
  post(samlResponse: string, opts?: { withCookie?: boolean; body?: string }): Promise<Response>;
  /** The whole login: start, IdP, post. */
  login(): Promise<Response>;
  cookie: string;
  /** The whole Set-Cookie of the last start. */
  setCookie: string;
}

/** `base`: the portal's real address; `publicUrl`: what its config says (the IdP posts to publicUrl, the test reaches base). */
export async function samlBrowser(portalCert: TestCert, base: string, publicUrl: string, idpTls: TestCert): Promise<SamlBrowser> {
  const get = await trustingFetch(portalCert);
  const getIdp = await trustingFetch(idpTls);
  const browser: SamlBrowser = {
    cookie: '',
    setCookie: '',
    async start() {
      const start = await get(`${base}/sso/saml/start`);
      assert.is(start.status, 303);
      const setCookie = start.headers.get('set-cookie') ?? '';
      assert.match(setCookie, /HttpOnly/);
      browser.cookie = setCookie.split(';')[0];
      browser.setCookie = setCookie;
      const idpPage = await getIdp(start.headers.get('location') ?? '');
      assert.is(idpPage.status, 200);
      const html = await idpPage.text();
      const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
      const samlResponse = /name="SAMLResponse" value="([^"]+)"/.exec(html)?.[1] ?? '';
      assert.ok(action.startsWith(publicUrl), `the IdP posts to the configured ACS URL (${action})`);
      return { acs: action.replace(publicUrl, base), samlResponse };
    },
    post(samlResponse, opts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (opts.withCookie !== false && browser.cookie) headers.cookie = browser.cookie;
      return get(`${base}/sso/saml/acs`, { method: 'POST', headers, body: opts.body ?? new URLSearchParams({ SAMLResponse: samlResponse }).toString() });
    },
    async login() {
      const { samlResponse } = await browser.start();
      return browser.post(samlResponse);
    },
  };
  return browser;
}
