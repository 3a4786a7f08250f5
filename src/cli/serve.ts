// `pgveil serve --config FILE`: runs the proxy until SIGINT/SIGTERM;
// SIGHUP reloads users and policy.
import { parseArgs, requireOption } from './args.js';
import type { Command } from './main.js';
import { startProxy } from '../session/server.js';

export const command: Command = {
  summary: 'run the proxy',
  usage: 'usage: pgveil serve --config <file>\n\n  --config <file>  the pgveil.yaml to run with (users and policy are reloaded on change and on SIGHUP)',
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    const proxy = await startProxy({ configFile: requireOption(args, 'config') });
    process.on('SIGHUP', () => { void proxy.reload(); });
    await new Promise<void>((resolve) => {
      const stop = () => { void proxy.close().then(resolve); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
