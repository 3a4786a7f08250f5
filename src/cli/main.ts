// Entry point of the `pgveil` command: dispatches to one module per command.
// Exit codes (docs/configuration.md): 0 success, 1 a finding or runtime failure, 2 usage
// or configuration error.
import { UsageError } from './args.js';
import { packageVersion } from './version.js';

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).command,
  check: async () => (await import('./check.js')).command,
  explain: async () => (await import('./explain.js')).command,
  passwd: async () => (await import('./passwd.js')).command,
  seal: async () => (await import('./seal.js')).command,
  keygen: async () => (await import('./keygen.js')).command,
  demo: async () => (await import('./demo.js')).command,
  'install-helpers': async () => (await import('./install-helpers.js')).command,
  healthcheck: async () => (await import('./healthcheck.js')).command,
  report: async () => (await import('./report.js')).command,
  audit: async () => (await import('./audit.js')).command,
  policy: async () => (await import('./policy.js')).command,
  sessions: async () => (await import('./sessions.js')).command,
  unlock: async () => (await import('./unlock.js')).command,
  'reset-request': async () => (await import('./reset-request.js')).command,
  rekey: async () => (await import('./rekey.js')).command,
  totp: async () => (await import('./totp.js')).command,
};

async function helpText(): Promise<string> {
  const lines = ['usage: pgveil <command> [options]', '', 'commands:'];
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(width)}  ${(await load()).summary}`);
  lines.push('', 'Run `pgveil <command> --help` for the options of one command, `pgveil --version` for the version.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await helpText());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    console.log(`pgveil ${packageVersion()}`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`pgveil: unknown command "${name}"\n\n${await helpText()}`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof Error && err.name === 'ConfigError') { console.error(err.message); return 2; } // one issue per line, file:line:col
    if (err instanceof UsageError) {
      console.error(`pgveil ${name}: ${err.message}\n${command.usage}`);
      return 2;
    }
    console.error(`pgveil ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
