// Placeholder until this command lands; replaced by its implementation.
import type { Command } from './main.js';

export const command: Command = {
  summary: '(not built yet)',
  usage: 'usage: pgveil sessions',
  async run(): Promise<number> {
    console.error('pgveil sessions: not built yet');
    return 2;
  },
};
