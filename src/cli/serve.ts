// `pgveil serve --config FILE`: runs the proxy until SIGINT/SIGTERM;
// SIGHUP reloads users and policy. With `workers: N` (N > 1) this process
// becomes the primary and forks N workers, each of which runs this same
// command and lands in runWorker.
import cluster from 'node:cluster';
import { parseArgs, requireOption } from './args.js';
import type { Command } from './main.js';
import { startProxy } from '../session/server.js';
import { startWorkers, workerCount } from '../session/workers.js';
import { WorkerLink } from '../session/worker-link.js';
import { loadAll, loadPolicy } from '../config/load.js';
import { createLogger } from '../observe/log.js';
import { masterKeyFileWarning } from '../secrets/master-key.js';

export const command: Command = {
  summary: 'run the proxy',
  usage: 'usage: pgveil serve --config <file>\n\n  --config <file>  the pgveil.yaml to run with (users and policy are reloaded on change and on SIGHUP)',
  async run(argv) {
    const configFile = requireOption(parseArgs(argv, { config: 'value' }), 'config');
    if (cluster.isWorker) return runWorker(configFile);
    const { config, users } = loadAll(configFile); // a bad config stops here, before any worker is forked
    if (config.shadow) loadPolicy(config.shadow, users); // and so does a shadow policy file that does not load
    const logger = createLogger();
    const looseKey = masterKeyFileWarning(config.secrets);
    if (looseKey) logger.warn(looseKey);
    if (workerCount(config.workers) > 1) {
      const primary = await startWorkers(config, logger);
      process.on('SIGHUP', () => primary.reload());
      process.once('SIGINT', () => primary.stop());
      process.once('SIGTERM', () => primary.stop());
      await primary.stopped;
      return 0;
    }
    const proxy = await startProxy({ configFile, logger });
    process.on('SIGHUP', () => { void proxy.reload(); });
    await new Promise<void>((resolve) => {
      const stop = () => { void proxy.close().then(resolve); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};

async function runWorker(configFile: string): Promise<number> {
  const link = await WorkerLink.connect();
  const logger = createLogger({ fields: { worker: link.workerId } });
  const proxy = await startProxy({ configFile, worker: link, logger }).catch((err: Error) => {
    // The IPC channel would keep a failed worker alive; the primary sees the exit and stops.
    logger.error('worker could not start', { error: err.message });
    process.exit(1);
  });
  link.serve(proxy);
  process.on('SIGHUP', () => { void proxy.reload(); });
  // The IPC channel keeps a worker alive, so it exits explicitly once its
  // sessions are closed — on SIGTERM from the primary, or when the primary is gone.
  // Ctrl-C reaches the whole process group; the primary's SIGTERM ends the worker.
  process.on('SIGINT', () => {});
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('disconnect', resolve);
  });
  await proxy.close();
  process.exit(0);
}
