// The reset mail, sent with nodemailer (a maintained SMTP client: STARTTLS,
// implicit TLS, AUTH) through `smtp:`. The link is in the text part only.
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type { Config } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';

export type SmtpConfig = NonNullable<Config['smtp']>;

const TIMEOUT_MS = 15_000;

export async function sendResetMail(config: Config, to: string, user: string, link: string, ttlMinutes: number): Promise<void> {
  const smtp = config.smtp!;
  const password = resolveSecret(smtp.password, () => loadMasterKey(config.secrets), `${displayFile(config.file)}: smtp.password`);
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === 'tls',
    // starttls: refuse to send over a server that does not offer the upgrade.
    requireTLS: smtp.tls === 'starttls',
    ignoreTLS: smtp.tls === 'none',
    auth: smtp.user !== undefined ? { user: smtp.user, pass: password ?? '' } : undefined,
    tls: { ca: smtp.ca ? readFileSync(smtp.ca) : undefined, minVersion: 'TLSv1.2' },
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  try {
    await transport.sendMail({
      from: smtp.from,
      to,
      subject: 'Reset your database password',
      text: [
        `Someone asked to reset the database password of "${user}".`,
        '',
        `To choose a new password, open this link within ${ttlMinutes} minutes:`,
        '',
        link,
        '',
        'The link works once. If you did not ask for this, ignore this mail: your password stays as it is.',
        '',
      ].join('\n'),
    });
  } finally {
    transport.close();
  }
}
