// A real SMTP server (smtp-server) for reset-mail tests: TLS with a test
// certificate (STARTTLS or implicit), AUTH with one user and password, and
// every accepted message kept for the test to read.
import { SMTPServer } from 'smtp-server';
import type net from 'node:net';
import { rsaCert, type TestCert } from '../auth/test-certs.js';

export interface Mail { to: string[]; raw: string }

export interface TestSmtp {
  port: number;
  cert: TestCert;
  mails: Mail[];
  /** Logins refused (wrong user or password). */
  refusedLogins: number;
  close(): Promise<void>;
}

export const SMTP_USER = 'pgveil-mailer';
export const SMTP_PASSWORD = 'Smtp-secret-0042';

export async function startSmtp(mode: 'starttls' | 'tls'): Promise<TestSmtp> {
  const cert = rsaCert('localhost');
  const state: TestSmtp = { port: 0, cert, mails: [], refusedLogins: 0, close: async () => {} };
  const server = new SMTPServer({
    secure: mode === 'tls',
    key: cert.keyPem,
    cert: cert.certPem,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) { callback(null, { user: auth.username }); return; }
      state.refusedLogins++;
      callback(new Error('invalid login'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        state.mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = ((server as unknown as { server: net.Server }).server.address() as net.AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

/** The reset link in a mail's text (quoted-printable soft breaks undone). */
export function linkIn(mail: Mail): string {
  const text = mail.raw.replace(/=\r?\n/g, '');
  const m = /https:\/\/\S+\/[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/.exec(text);
  if (!m) throw new Error(`no reset link in the mail:\n${mail.raw}`);
  return m[0];
}
