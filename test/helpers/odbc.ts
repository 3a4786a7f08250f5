// unixODBC set-up for isql runs: a driver entry for psqlODBC and one DSN,
// written into `dir`; returns the environment that makes isql read them.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const driver = ['/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so'].find(existsSync) ?? 'psqlodbcw.so';

/** `settings`: DSN keys beyond the driver (Servername, Port, Database, SSLmode …). */
export function odbcDsn(dir: string, name: string, settings: Record<string, string | number>): NodeJS.ProcessEnv {
  writeFileSync(join(dir, 'odbcinst.ini'), `[PostgreSQL Unicode]\nDriver = ${driver}\n`);
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join('');
  writeFileSync(join(dir, 'odbc.ini'), `[${name}]\nDriver = PostgreSQL Unicode\n${lines}`);
  return { ...process.env, ODBCSYSINI: dir, ODBCINI: join(dir, 'odbc.ini') };
}
