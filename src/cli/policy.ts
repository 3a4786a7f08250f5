// `pgveil policy diff|replay …`: safe policy changes. Each subcommand is its own module.
import type { Command } from './main.js';
import { UsageError } from './args.js';

const subcommands: Record<string, () => Promise<Command>> = {
  diff: async () => (await import('./policy-diff.js')).command,
  replay: async () => (await import('./policy-replay.js')).command,
};

const usage = [
  'usage: pgveil policy diff --config <file> [--format text|json] <candidate.yaml>',
  '       pgveil policy replay --config <file> --policy <candidate.yaml> <audit files…>',
].join('\n');

export const command: Command = {
  summary: 'what a candidate policy changes (diff) and which recorded statements it decides differently (replay)',
  usage,
  async run(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    const load = name ? subcommands[name] : undefined;
    if (!load) throw new UsageError(name ? `unknown subcommand "${name}"` : 'missing subcommand (diff or replay)');
    return (await load()).run(rest);
  },
};
