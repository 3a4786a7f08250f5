// A child process the durability test runs under strace: opens an audit log
// with the `syncMs` given, says "opened", queues 50 statement records on
// "record", and closes on "close", so the test sees each step's system calls.
import { createInterface } from 'node:readline';
import { AuditLog } from '../../../src/audit/writer.js';
import { silentLogger } from '../../../src/observe/log.js';

const [file, syncMs] = [process.argv[2], Number(process.argv[3])];
const log = await AuditLog.open({ file, retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs }, { logger: silentLogger });
process.stdout.write('opened\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'record') {
    for (let i = 0; i < 50; i++) {
      log.record({ event: 'statement', session: '0-1', user: 'alice@acme.com', org: 'acme', fingerprint: 'a1b2c3d4e5f60718', relations: ['public.t'], decision: 'rewritten', durationMs: i, rows: 1 });
    }
  } else if (line === 'close') {
    await log.close();
    process.exit(0); // stdin stays open in the parent

  }
}
