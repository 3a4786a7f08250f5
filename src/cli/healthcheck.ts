// `pgveil healthcheck --config FILE`: is the pgveil serving this config alive?
// The container's HEALTHCHECK runs it, so it must work with any config, not
// only one that opens the admin endpoint on a fixed address: with `admin:` it
// asks GET /healthz there, otherwise it asks the client port for an SSL
// answer (one byte, no login: nothing is logged or counted as a failure).
// Exit 0 healthy, 1 anything else — Docker reserves 2, so a bad config or
// bad usage is "unhealthy" too, with the reason on stderr.
import { request } from 'node:http';
import { connect } from 'node:net';
import { parseArgs, requireOption } from './args.js';
import type { Command } from './main.js';
import { loadConfig } from '../config/load.js';

const TIMEOUT_MS = 3000;
const USAGE = 'usage: pgveil healthcheck --config <file>\n\n  --config <file>  the pgveil.yaml the running pgveil was started with';

/** A wildcard listen address is reached through loopback. */
function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

function httpOk(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/healthz', method: 'GET', timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `GET /healthz answered ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

/** SSLRequest (length 8, code 80877103): a live pgveil answers one byte, S or N. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function postgresAnswers(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (problem: string | undefined) => { socket.destroy(); resolve(problem); };
    socket.setTimeout(TIMEOUT_MS, () => done(`no answer within ${TIMEOUT_MS} ms`));
    socket.once('connect', () => socket.write(SSL_REQUEST));
    socket.once('data', (d: Buffer) => done(d[0] === 0x53 || d[0] === 0x4e ? undefined : 'not a PostgreSQL answer'));
    socket.once('error', (err) => done(err.message));
    socket.once('end', () => done('closed without an answer'));
  });
}

async function run(argv: string[]): Promise<number> {
  let target: string;
  let problem: string | undefined;
  try {
    const config = loadConfig(requireOption(parseArgs(argv, { config: 'value' }), 'config'));
    const probe = config.admin
      ? { what: 'admin', host: probeHost(config.admin.host), port: config.admin.port, ask: httpOk }
      : { what: 'listen', host: probeHost(config.listen.host), port: config.listen.port, ask: postgresAnswers };
    target = `${probe.what} ${probe.host}:${probe.port}`;
    problem = probe.port === 0
      ? 'port 0 (any free port) cannot be probed: set a fixed port'
      : await probe.ask(probe.host, probe.port);
  } catch (err) {
    console.error(`pgveil healthcheck: unhealthy: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  if (problem) {
    console.error(`pgveil healthcheck: unhealthy: ${target}: ${problem}`);
    return 1;
  }
  console.log(`ok: ${target}`);
  return 0;
}

export const command: Command = {
  summary: 'exit 0 if the pgveil serving this config answers (admin /healthz, else the client port); 1 if not',
  usage: USAGE,
  run,
};
