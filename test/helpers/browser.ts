// A small browser for SSO tests: real https requests (node:https, trusting
// the test CAs), a cookie jar by host and path, redirects followed one by one
// (so a test can stop at or change any of them), and the first form of a page
// submitted as a browser would (its hidden fields plus the ones given).
// Hosts may be mapped to local addresses (the portal's publicUrl names a host
// that only the test knows).
import { request } from 'node:https';

export interface Page { url: string; status: number; headers: Record<string, string | string[] | undefined>; body: string }

interface StoredCookie { value: string; path: string }

export class Browser {
  /** hostname → cookie name → cookie */
  private readonly jar = new Map<string, Map<string, StoredCookie>>();

  constructor(private readonly ca: string[], private readonly hosts: Record<string, string> = {}) {}

  /** One request, no redirect followed. */
  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Page> {
    const target = new URL(url);
    const mapped = this.hosts[target.host];
    const wire = mapped ? new URL(target.pathname + target.search, mapped) : target;
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    const headers: Record<string, string> = {};
    const cookies = this.cookiesFor(target);
    if (cookies) headers.cookie = cookies;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const page = await new Promise<Page>((resolve, reject) => {
      const req = request(wire, { method: init.method ?? (body ? 'POST' : 'GET'), headers, ca: this.ca }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ url, status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    this.store(target, page.headers['set-cookie']);
    return page;
  }

  /** Requests `url` and follows redirects until a page that is not one, or until `stop` says so for a redirect target. */
  async follow(url: string, init: { method?: string; form?: Record<string, string> } = {}, stop?: (location: string) => boolean): Promise<Page> {
    let page = await this.request(url, init);
    for (let hops = 0; page.status >= 300 && page.status < 400 && page.headers.location; hops++) {
      if (hops > 20) throw new Error('too many redirects');
      const next = new URL(String(page.headers.location), page.url).href;
      if (stop?.(next)) return page;
      page = await this.request(next);
    }
    return page;
  }

  /** Submits the page's first form with its hidden fields and `fields`, and follows the redirects. */
  submitForm(page: Page, fields: Record<string, string> = {}, stop?: (location: string) => boolean): Promise<Page> {
    const form = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(page.body);
    if (!form) throw new Error(`no form on ${page.url}: ${page.body.slice(0, 300)}`);
    const action = attribute(form[0], 'action') ?? page.url;
    const values: Record<string, string> = {};
    for (const input of form[1].matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input[0], 'name');
      if (name && attribute(input[0], 'type') === 'hidden') values[name] = attribute(input[0], 'value') ?? '';
    }
    return this.follow(new URL(action, page.url).href, { method: 'POST', form: { ...values, ...fields } }, stop);
  }

  /** The value of a cookie the jar holds for this host, or undefined. */
  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name)?.value;
  }

  setCookie(host: string, name: string, value: string, path = '/'): void {
    const cookies = this.jar.get(host) ?? new Map<string, StoredCookie>();
    cookies.set(name, { value, path });
    this.jar.set(host, cookies);
  }

  private cookiesFor(url: URL): string {
    const cookies = this.jar.get(url.hostname);
    if (!cookies) return '';
    return [...cookies].filter(([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map(([name, c]) => `${name}=${c.value}`).join('; ');
  }

  private store(url: URL, header: string | string[] | undefined): void {
    for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = (key: string) => attrs.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const path = attr('path') ?? '/';
      const expires = attr('expires');
      const gone = attr('max-age') === '0' || (expires !== undefined && Date.parse(expires) <= Date.now());
      const cookies = this.jar.get(url.hostname) ?? new Map<string, StoredCookie>();
      if (gone) cookies.delete(name); else cookies.set(name, { value, path });
      this.jar.set(url.hostname, cookies);
    }
  }
}

function attribute(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag);
  return m ? m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'") : undefined;
}
