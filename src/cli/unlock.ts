// Placeholder until this command lands; replaced by its implementation.
import type { Command } from './main.js';

export const command: Command = {
  summary: '(not built yet)',
  usage: 'usage: pgveil unlock',
  async run(): Promise<number> {
    console.error('pgveil unlock: not built yet');
    return 2;
  },
};
