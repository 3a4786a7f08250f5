// Another session's view of a proxy under load: a worker thread (its own
// event loop, so the bench's main thread building and sending a 10 MB
// statement does not delay it) that runs `select 1` back to back on its own
// connection and reports each round trip's time in ms when told to stop.
import { Worker, parentPort, workerData, isMainThread } from 'node:worker_threads';
import pg from 'pg';

export interface Probe {
  /** Stops probing; resolves with every wait in ms (a failed query ends the list). */
  stop(): Promise<number[]>;
}

/** Starts the probe on a connected, warmed session; resolves once it is probing. */
export async function startSelectOneProbe(config: pg.ClientConfig): Promise<Probe> {
  const worker = new Worker(new URL(import.meta.url), { workerData: config });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return {
    stop: () => new Promise<number[]>((resolve, reject) => {
      worker.once('message', (waits: number[]) => { void worker.terminate(); resolve(waits); });
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const client = new pg.Client(workerData as pg.ClientConfig);
  client.on('error', () => {});
  await client.connect();
  await client.query('SELECT 1');
  let stopping = false;
  port.on('message', () => { stopping = true; });
  port.postMessage('ready');
  const waits: number[] = [];
  while (!stopping) {
    const t = performance.now();
    try { await client.query('SELECT 1'); } catch { break; }
    waits.push(performance.now() - t);
  }
  while (!stopping) await new Promise((r) => setTimeout(r, 10));
  port.postMessage(waits);
  await client.end().catch(() => {});
}
