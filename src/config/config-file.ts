// pgveil.yaml after schema validation: resolve paths, check the files it
// names, and the rules that span several keys (TLS mode vs. certificates …).
import type { Config } from './types.js';
import { readFileSync } from 'node:fs';
import { checkReadableFile, resolveFrom } from './file-refs.js';
import { jwksProblem } from '../auth/oidc-jwks.js';
import { idpCertProblem } from '../sso/saml-idp-cert.js';
import type { YamlSource } from './yaml-source.js';

/** `source.data` must already be schema-valid (defaults filled). Semantic problems are reported into `source`. */
export function buildConfig(source: YamlSource): Config {
  const raw = source.data as Omit<Config, 'file'>;
  const file = source.file;
  // Tolerates absent required values: after a schema failure this still runs to find more problems.
  const at = (p: string) => (typeof p === 'string' ? resolveFrom(file, p) : p);
  const opt = (p: string | undefined) => (p === undefined ? undefined : at(p));

  const config: Config = {
    ...raw,
    file,
    tls: { ...raw.tls, cert: opt(raw.tls.cert), key: opt(raw.tls.key), clientCa: opt(raw.tls.clientCa) },
    upstream: raw.upstream && { ...raw.upstream, tls: { ...raw.upstream.tls, ca: opt(raw.upstream.tls.ca) } },
    secrets: { masterKeyFile: opt(raw.secrets.masterKeyFile) },
    users: at(raw.users),
    policy: at(raw.policy),
    auth: raw.auth.oidc ? { ...raw.auth, oidc: { ...raw.auth.oidc, jwks: isUrl(raw.auth.oidc.jwks) ? raw.auth.oidc.jwks : at(raw.auth.oidc.jwks), ...(raw.auth.oidc.ca !== undefined && { ca: at(raw.auth.oidc.ca) }) } } : raw.auth,
    audit: raw.audit ? { ...raw.audit, file: at(raw.audit.file), ...(raw.audit.syslogCa !== undefined && { syslogCa: at(raw.audit.syslogCa) }) } : undefined,
    cache: { ...raw.cache, maxBytes: sizeInBytes(source, ['cache', 'maxBytes'], raw.cache.maxBytes as number | string) },
    smtp: raw.smtp && { ...raw.smtp, ...(raw.smtp.ca !== undefined && { ca: at(raw.smtp.ca) }) },
    portal: raw.portal && { ...raw.portal, tls: raw.portal.tls && { cert: at(raw.portal.tls.cert), key: at(raw.portal.tls.key) } },
    sso: raw.sso && {
      ...raw.sso,
      ...(raw.sso.oidc && { oidc: { ...raw.sso.oidc, ...(raw.sso.oidc.ca !== undefined && { ca: at(raw.sso.oidc.ca) }) } }),
      ...(raw.sso.saml && { saml: { ...raw.sso.saml, idpCert: at(raw.sso.saml.idpCert) } }),
    },
    shadow: opt(raw.shadow),
  };
  for (const key of ['smtp', 'audit', 'portal', 'sso', 'shadow'] as const) if (config[key] === undefined) delete config[key];
  if (config.secrets.masterKeyFile === undefined) delete config.secrets.masterKeyFile;

  checkTls(source, config);
  checkFiles(source, config);
  checkOptionalFeatures(source, config);
  return config;
}

const sizeUnits: Record<string, number> = { '': 1, B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/**
 * `cache.maxBytes` as bytes: an integer, or digits with unit B, kB, MB or GB
 * (1024-based and case-sensitive, as in postgresql.conf). The schema has
 * checked the shape; what is left is the range.
 */
function sizeInBytes(source: YamlSource, path: string[], value: number | string): number {
  if (typeof value === 'number') return value;
  const m = /^([0-9]+) ?(B|kB|MB|GB)?$/.exec(value);
  if (!m) return NaN; // reported by the schema
  const bytes = Number(m[1]) * sizeUnits[m[2] ?? ''];
  if (bytes < 1) source.report(path, 'expected a size of at least 1 byte, got 0');
  else if (!Number.isSafeInteger(bytes)) source.report(path, 'too large (at most 2^53 - 1 bytes)');
  return bytes;
}

function isUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

function checkTls(source: YamlSource, config: Config): void {
  const { mode } = config.tls;
  if (mode !== 'disable') {
    const which = source.has(['tls', 'mode']) ? mode : `${mode} (the default)`;
    for (const key of ['cert', 'key'] as const) {
      if (!config.tls[key]) {
        source.report(['tls'], `missing required key "${key}": tls.mode ${which} needs a certificate and key (mode: disable runs without TLS)`, 'mapping');
      }
    }
  } else if (config.tls.clientCa) {
    source.report(['tls', 'clientCa'], 'client certificates need TLS, but tls.mode is disable');
  }
  if (config.upstream?.tls.ca && config.upstream.tls.mode === 'disable') {
    source.report(['upstream', 'tls', 'ca'], 'not used: upstream.tls.mode is disable (use verify-ca or verify-full)');
  }
}

function checkFiles(source: YamlSource, config: Config): void {
  const refs: Array<[Array<string>, string | undefined]> = [
    [['tls', 'cert'], config.tls.cert],
    [['tls', 'key'], config.tls.key],
    [['tls', 'clientCa'], config.tls.clientCa],
    [['upstream', 'tls', 'ca'], config.upstream?.tls.ca],
    [['audit', 'syslogCa'], config.audit?.syslogCa],
    [['smtp', 'ca'], config.smtp?.ca],
    [['secrets', 'masterKeyFile'], config.secrets.masterKeyFile],
    [['users'], config.users as string | undefined],
    [['policy'], config.policy as string | undefined],
  ];
  refs.push(
    [['portal', 'tls', 'cert'], config.portal?.tls?.cert],
    [['portal', 'tls', 'key'], config.portal?.tls?.key],
    [['sso', 'oidc', 'ca'], config.sso?.oidc?.ca],
    [['auth', 'oidc', 'ca'], config.auth.oidc?.ca],
    [['shadow'], config.shadow],
  );
  for (const [path, abs] of refs) if (abs !== undefined) checkReadableFile(source, path, abs);
  checkJwksFile(source, config.auth.oidc?.jwks);
  checkSamlCertFile(source, config.sso?.saml?.idpCert);
}

/** The IdP certificate is read at every load too: a file without a usable certificate fails the load instead of every SAML login. */
function checkSamlCertFile(source: YamlSource, file: string | undefined): void {
  const path = ['sso', 'saml', 'idpCert'];
  if (file === undefined || !checkReadableFile(source, path, file)) return;
  const problem = idpCertProblem(readFileSync(file, 'utf8'));
  if (problem) source.report(path, problem);
}

/** A JWKS file is read at every load, so a broken one fails the load (and the reload) instead of every later login. */
function checkJwksFile(source: YamlSource, jwks: string | undefined): void {
  const path = ['auth', 'oidc', 'jwks'];
  if (jwks === undefined || isUrl(jwks) || !checkReadableFile(source, path, jwks)) return;
  const problem = jwksProblem(readFileSync(jwks, 'utf8'));
  if (problem) source.report(path, problem);
}

function checkOptionalFeatures(source: YamlSource, config: Config): void {
  const jwks = config.auth.oidc?.jwks;
  if (jwks !== undefined && isUrl(jwks) && !jwks.startsWith('https://')) {
    source.report(['auth', 'oidc', 'jwks'], 'must be a file path or an https:// URL');
  }
  if (config.auth.oidc?.ca !== undefined && jwks !== undefined && !isUrl(jwks)) {
    source.report(['auth', 'oidc', 'ca'], 'only used for an https:// jwks URL, but jwks is a file', 'key');
  }
  if (config.auth.oidc && config.tls.mode === 'disable') {
    source.report(['auth', 'oidc'], 'OIDC tokens are only accepted over TLS, but tls.mode is disable', 'key');
  }
  if (config.reset && !config.smtp) {
    source.report(['reset'], 'password reset sends mail: configure smtp too', 'key');
  }
  const admin = config.admin;
  if (admin && admin.port !== 0 && admin.port === config.listen.port && admin.host === config.listen.host) {
    source.report(['admin', 'port'], `same address as listen (${admin.host}:${admin.port})`);
  }
  const portal = config.portal;
  if (portal) {
    for (const [name, other] of [['listen', config.listen], ['admin', admin]] as const) {
      if (other && clash(portal, other)) source.report(['portal', 'port'], `same port as ${name} (${other.host}:${other.port})`);
    }
  }
  if (config.sso && !portal) {
    source.report(['sso'], 'SSO logins happen on the portal: configure portal too', 'key');
  }
  if (config.sso && config.tls.mode === 'disable') {
    source.report(['sso'], 'the passwords an SSO login issues are only accepted over TLS, but tls.mode is disable', 'key');
  }
  const syslog = config.audit?.syslog;
  const port = syslog === undefined ? undefined : Number(/:([0-9]+)$/.exec(syslog)?.[1]);
  if (port !== undefined && !(port >= 1 && port <= 65535)) {
    source.report(['audit', 'syslog'], 'port must be from 1 to 65535');
  }
  if (config.audit?.syslogCa !== undefined && !syslog?.startsWith('tls://')) {
    source.report(['audit', 'syslogCa'], 'not used: audit.syslog is not a tls:// address');
  }
}

const wildcard = new Set(['0.0.0.0', '::', '[::]']);

/** Two listeners on one port collide when their hosts are equal or either is a wildcard address. */
function clash(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.port !== 0 && a.port === b.port && (a.host === b.host || wildcard.has(a.host) || wildcard.has(b.host));
}
