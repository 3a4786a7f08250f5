// Structured log lines (one JSON object per line on stderr). Callers pass
// fields, never preformatted SQL or secrets: the logger has no way to know
// what is secret, so nothing secret may be handed to it.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** fields: added to every line (e.g. the worker id under `workers: N`). */
export function createLogger(opts: { level?: LogLevel; write?: (line: string) => void; fields?: Record<string, unknown> } = {}): Logger {
  const min = rank[opts.level ?? ((process.env.PGVEIL_LOG_LEVEL as LogLevel) || 'info')] ?? rank.info;
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (rank[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...opts.fields, ...fields }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
