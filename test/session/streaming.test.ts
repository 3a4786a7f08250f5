// A large result flows through pgveil with backpressure.
// pgveil runs in its own process (as deployed) so its memory can be sampled;
// a deliberately slow reader pulls 1,000,000 rows (~110 MB) through it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startHarness, passwords, type Harness } from '../helpers/harness.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { RawClient, msg } from '../helpers/raw-client.js';

let h: Harness;
let proxy: ChildProcess;
let port = 0;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer' });
  port = await freePort();
  const configFile = h.configFile.replace(/\.yaml$/, '-stream.yaml');
  writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace('port: 0 }', `port: ${port} }`));
  proxy = spawn(process.execPath, [fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url)), 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Up to 60 s: a loaded machine can take well over 5 s to start a serve process.
  for (let i = 0; i < 600; i++) {
    try { (await RawClient.connect(port)).close(); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
});
test.after(async () => {
  proxy?.kill('SIGTERM');
  await h.close();
});

test('1,000,000 rows stream to a slow client while pgveil\'s RSS grows by less than 50 MB', async () => {
  const c = await RawClient.connect(port);
  await c.login('alice@acme.com', passwords['alice@acme.com']);
  const pid = proxy.pid as number;
  const before = rssMb(pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(pid)); }, 50);
  c.send(msg.query("select g, repeat('x', 100) as pad from generate_series(1, 1000000) g"));
  // Read slowly: pause the socket often so pgveil has to hold back upstream instead of buffering.
  let rows = 0;
  let done = false;
  let buffered: Buffer = Buffer.alloc(0);
  c.socket.removeAllListeners('data');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${rows} rows`)), 120_000);
    c.socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      let pos = 0;
      while (buffered.length - pos >= 5) {
        const len = buffered.readInt32BE(pos + 1);
        if (buffered.length - pos < len + 1) break;
        const type = buffered[pos];
        if (type === 0x44) rows++;
        if (type === 0x5a) done = true;
        pos += len + 1;
      }
      buffered = buffered.subarray(pos);
      if (done) { clearTimeout(timer); resolve(); return; }
      c.socket.pause();
      setTimeout(() => c.socket.resume(), 2);
    });
  });
  clearInterval(sampler);
  c.close();
  console.log(`streamed ${rows} rows; pgveil RSS ${before.toFixed(1)} MB → peak ${peak.toFixed(1)} MB`);
  assert.is(rows, 1_000_000);
  assert.ok(peak - before < 50, `RSS grew by ${(peak - before).toFixed(1)} MB (from ${before.toFixed(1)} to ${peak.toFixed(1)})`);
});

test.run();
