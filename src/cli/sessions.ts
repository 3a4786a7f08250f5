// `pgveil sessions --config FILE [--json] [kill <id>]`: the open sessions of
// the running pgveil, through its admin control API (admin.token), or end one
// with 57P01.
import { parseArgs, requireOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { adminClient, withAdmin } from './admin-client.js';
import type { SessionInfo } from '../session/session-info.js';

const usage = `usage: pgveil sessions --config <file> [--json]
       pgveil sessions --config <file> kill <id>

  --config <file>  the pgveil.yaml the running pgveil was started with (its
                   admin.host, admin.port and admin.token are used)
  --json           print the sessions as JSON instead of a table
  kill <id>        end that session: its client gets 57P01 and its upstream
                   connection is closed

Exit codes: 0 done, 1 no such session, the token was refused or the admin API
could not be reached, 2 usage or configuration error (e.g. no admin.token).`;

const columns = ['id', 'user', 'org', 'address', 'since', 'state', 'statements'] as const;

function row(s: SessionInfo): string[] {
  return [
    s.id, s.user ?? '', s.org ?? '', s.port === undefined ? s.address : `${s.address}:${s.port}`,
    s.since.replace(/\.\d+Z$/, 'Z'), s.state, String(s.statements),
  ];
}

/** A plain table, columns padded to their widest cell. */
export function sessionTable(sessions: SessionInfo[]): string {
  const rows = [[...columns], ...sessions.map(row)];
  const widths = columns.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export const command: Command = {
  summary: 'list the open sessions of the running pgveil, or end one (admin API)',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value', json: 'flag' });
    const configFile = requireOption(args, 'config');
    const [verb, id, ...extra] = args.positionals;
    if (verb !== undefined && verb !== 'kill') throw new UsageError(`unknown argument "${verb}"`);
    if (verb === 'kill' && (id === undefined || extra.length > 0)) throw new UsageError('kill takes one session id');
    return withAdmin('sessions', async () => {
      const admin = adminClient(configFile);
      if (verb === 'kill') {
        const { status, body } = await admin.request('DELETE', `/sessions/${encodeURIComponent(id!)}`);
        if (status !== 200) { console.error(`pgveil sessions: ${String(body.error ?? `no open session ${id}`)}`); return 1; }
        console.log(`terminated session ${id}`);
        return 0;
      }
      const { status, body } = await admin.request('GET', '/sessions');
      if (status !== 200 || !Array.isArray(body.sessions)) { console.error(`pgveil sessions: unexpected answer ${status} from ${admin.base}`); return 1; }
      const sessions = body.sessions as SessionInfo[];
      console.log(args.options.has('json') ? JSON.stringify(sessions, null, 2) : sessionTable(sessions));
      return 0;
    });
  },
};
