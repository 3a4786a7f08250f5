// The portal pages of browser SSO: the sign-in page at `/` (links to the
// configured sign-in methods and to the password-reset page), the page that
// shows the database password a sign-in got (with what to type into psql, a
// JDBC URL and a BI tool's fields: never the password in a URL or command
// line, it is pasted when asked), and the refusal page.
import type { Config } from '../config/types.js';
import { escapeHtml, page } from '../portal/html.js';

/** Where clients reach the database: the portal's public host name, pgveil's port and the database. */
export interface DatabaseAddress { host: string; port: number; database: string }

export function signInPage(config: Config): string {
  const base = portalBase(config);
  const links: string[] = [];
  if (config.sso?.oidc) links.push(`<li><a href="${escapeHtml(`${base}/sso/oidc/start`)}">Sign in with your organization's account (OpenID Connect)</a></li>`);
  if (config.sso?.saml) links.push(`<li><a href="${escapeHtml(`${base}/sso/saml/start`)}">Sign in with your organization's account (SAML)</a></li>`);
  const signIn = links.length
    ? `<p>Sign in to get a database password for psql, a BI tool or a driver. It works for a limited time; sign in again for a new one.</p><ul>${links.join('')}</ul>`
    : '<p>No single sign-on is set up here.</p>';
  const reset = config.reset ? `<p><a href="${escapeHtml(config.reset.linkBase)}">Forgot your database password?</a></p>` : '';
  return page('Database sign-in', signIn + reset);
}

/** The page with the issued password: shown once (the portal sends it with no-store), never put into a link or command. */
export function credentialPage(user: string, password: string, expiresAt: number, db: DatabaseAddress): string {
  const until = new Date(expiresAt).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const uriUser = uriComponent(user);
  const uriDb = uriComponent(db.database);
  const host = db.host.includes(':') && !db.host.startsWith('[') ? `[${db.host}]` : db.host;
  const psql = `psql 'postgresql://${uriUser}@${host}:${db.port}/${uriDb}?sslmode=require'`;
  const jdbc = `jdbc:postgresql://${host}:${db.port}/${uriDb}?sslmode=require`;
  const field = (label: string, value: string) => `<tr><th scope="row">${escapeHtml(label)}</th><td><code>${escapeHtml(value)}</code></td></tr>`;
  return page('Your database password', `<p>Signed in as <strong>${escapeHtml(user)}</strong>. This password works until <strong>${escapeHtml(until)}</strong>; sessions opened with it end then. It is shown only now: copy it before you leave this page.</p>
<label for="password">Password</label><input id="password" readonly value="${escapeHtml(password)}" autocomplete="off" spellcheck="false">
<h2>psql</h2>
<p>Run this and paste the password when psql asks for it:</p>
<pre style="white-space:pre-wrap;word-break:break-all">${escapeHtml(psql)}</pre>
<h2>BI tool or driver</h2>
<table>
${field('Host', db.host)}
${field('Port', String(db.port))}
${field('Database', db.database)}
${field('User', user)}
${field('Password', 'paste the password above')}
${field('SSL', 'require')}
${field('JDBC URL', jdbc)}
</table>
<p>Enter the user and the password in the tool's own user and password fields, not in the URL.</p>`);
}

export function noAccessPage(): string {
  return page('No database access', '<p>You are signed in, but this account has no access to the database. Ask your database administrator if you think it should.</p>');
}

export function unavailablePage(): string {
  return page('Sign-in could not be completed', '<p>Something went wrong on our side. Try signing in again in a few minutes.</p>');
}

/** portal.publicUrl without a trailing slash: the portal's paths are appended to it. */
export function portalBase(config: Config): string {
  return (config.portal?.publicUrl ?? '').replace(/\/+$/, '');
}

/** Percent-encodes all but unreserved characters, so the URI also stays one word inside single quotes in a shell. */
function uriComponent(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
