// A node-postgres connection as the service role, for pgveil's own reads of
// the upstream catalog (never for client traffic). TLS follows
// upstream.tls exactly as the session connections do.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { UpstreamConfig } from '../config/types.js';

export async function openServiceClient(cfg: UpstreamConfig, password: string | undefined): Promise<pg.Client> {
  const verify = cfg.tls.mode === 'verify-ca' || cfg.tls.mode === 'verify-full';
  const ssl = cfg.tls.mode === 'disable' ? false : {
    rejectUnauthorized: verify,
    ca: cfg.tls.ca ? readFileSync(cfg.tls.ca, 'utf8') : undefined,
    checkServerIdentity: cfg.tls.mode === 'verify-full'
      ? (_name: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(cfg.host, cert)
      : () => undefined,
  };
  const client = new pg.Client({
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    password,
    ssl,
    application_name: 'pgveil:catalog',
    connectionTimeoutMillis: cfg.connectTimeoutMs,
  });
  client.on('error', () => { /* a dropped catalog connection is reported by the query that needed it */ });
  await client.connect();
  return client;
}
