// The syslog copy of the audit log, received by a real TCP server and a real TLS
// server that parse RFC 6587 octet-counted RFC 5424 frames: the message is the
// audit line exactly as in the file; lost connections are retried with the
// records kept; a receiver that cannot be reached or verified never stops the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditConfig } from '../../src/audit/writer.js';
import { SyslogForwarder, parseSyslogUrl } from '../../src/audit/syslog.js';
import { verifyCopy, verifyPath } from '../../src/audit/verify.js';
import { createCertificateAuthority, createServerCertificate } from '../../src/demo/certs.js';
import { createLogger, silentLogger } from '../../src/observe/log.js';

interface Frame { pri: number; version: string; ts: string; host: string; app: string; pid: string; msgid: string; sd: string; msg: string }

/** Parses octet-counted frames from a stream; each frame is `<len> <message of len octets>`. */
function frameParser(onFrame: (f: Frame) => void) {
  let buf = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const space = buf.indexOf(0x20);
      if (space < 0) return;
      const len = Number(buf.subarray(0, space).toString('ascii'));
      assert.ok(Number.isInteger(len) && len > 0, `frame length ${buf.subarray(0, space).toString()}`);
      if (buf.length < space + 1 + len) return;
      const message = buf.subarray(space + 1, space + 1 + len).toString('utf8');
      buf = buf.subarray(space + 1 + len);
      const m = /^<(\d+)>(1) (\S+) (\S+) (\S+) (\S+) (\S+) (-) (.*)$/s.exec(message);
      assert.ok(m, `RFC 5424 message: ${message}`);
      onFrame({ pri: Number(m[1]), version: m[2], ts: m[3], host: m[4], app: m[5], pid: m[6], msgid: m[7], sd: m[8], msg: m[9] });
    }
  };
}

interface Receiver { port: number; frames: Frame[]; sockets: Set<net.Socket>; waitFor(n: number): Promise<void>; close(): Promise<void> }

function receiver(server: net.Server, port = 0): Promise<Receiver> {
  const frames: Frame[] = [];
  const sockets = new Set<net.Socket>();
  let waiting: { n: number; resolve: () => void } | null = null;
  const check = () => { if (waiting && frames.length >= waiting.n) { waiting.resolve(); waiting = null; } };
  const event = server instanceof tls.Server ? 'secureConnection' : 'connection';
  server.on(event, (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', frameParser((f) => { frames.push(f); check(); }));
  });
  server.on('tlsClientError', () => {});
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({
    port: (server.address() as net.AddressInfo).port, frames, sockets,
    waitFor: (n) => new Promise<void>((r) => { waiting = { n, resolve: r }; check(); }),
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  })));
}

const made: string[] = [];
test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });
function auditConfig(syslog: string, extra: Partial<AuditConfig> = {}): AuditConfig {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-syslog-'));
  made.push(dir);
  return { file: join(dir, 'audit.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 100, syslog, ...extra };
}
const fileLines = (path: string) => readFileSync(path, 'utf8').slice(0, -1).split('\n');

test('tcp: every audit line arrives as an RFC 5424 message (facility log audit, MSGID the event) carrying the line byte for byte', async () => {
  const rx = await receiver(net.createServer());
  const cfg = auditConfig(`tcp://127.0.0.1:${rx.port}`);
  const log = await AuditLog.open(cfg, { logger: silentLogger });
  log.record({ event: 'connect', session: 's1', address: '127.0.0.1', tls: false });
  log.record({ event: 'auth', session: 's1', user: 'zoë@acme.com', address: '127.0.0.1', outcome: 'failure', reason: 'wrong_password' });
  log.record({ event: 'statement', session: 's1', user: 'bob@acme.com', fingerprint: 'ab12', relations: [], decision: 'forwarded' });
  await log.flush();
  await rx.waitFor(4);
  await log.close();
  await rx.close();
  const lines = fileLines(cfg.file);
  assert.equal(rx.frames.map((f) => f.msg), lines);
  assert.equal(rx.frames.map((f) => f.msgid), ['audit_file_start', 'connect', 'auth', 'statement']);
  assert.equal(rx.frames.map((f) => f.pri), [13 * 8 + 6, 13 * 8 + 6, 13 * 8 + 4, 13 * 8 + 6]);
  for (const [i, f] of rx.frames.entries()) {
    assert.is(f.version, '1');
    assert.is(f.app, 'pgveil');
    assert.is(f.pid, String(process.pid));
    assert.is(f.ts, JSON.parse(lines[i]).ts);
    assert.match(f.host, /^[\x21-\x7e]+$/);
  }
});

test('tls: a receiver whose certificate the configured CA signed gets the copy; one it does not trust gets nothing and the file is written anyway', async () => {
  const ca = createCertificateAuthority('pgveil syslog test CA');
  const cert = createServerCertificate(ca, { commonName: 'siem', hosts: ['127.0.0.1', 'localhost'] });
  const rx = await receiver(tls.createServer({ cert: cert.certPem, key: cert.keyPem }));
  const caDir = mkdtempSync(join(tmpdir(), 'pgveil-syslog-ca-'));
  made.push(caDir);
  writeFileSync(join(caDir, 'ca.crt'), ca.certPem);
  const trusted = auditConfig(`tls://localhost:${rx.port}`, { syslogCa: join(caDir, 'ca.crt') });
  const log = await AuditLog.open(trusted, { logger: silentLogger });
  log.record({ event: 'unlock', user: 'alice@acme.com', by: 'admin' });
  await log.flush();
  await rx.waitFor(2);
  await log.close();
  assert.equal(rx.frames.map((f) => f.msg), fileLines(trusted.file));

  // Without the CA the receiver's certificate is not trusted: a warning, no frames, the file still written.
  const logged: { msg: string; error?: string }[] = [];
  const untrusted = auditConfig(`tls://localhost:${rx.port}`);
  const other = await AuditLog.open(untrusted, { logger: createLogger({ write: (l) => logged.push(JSON.parse(l)) }) });
  other.record({ event: 'unlock', user: 'bob@acme.com', by: 'admin' });
  await other.flush();
  await new Promise<void>((resolve) => { const poll = () => (logged.some((l) => l.msg.startsWith('syslog copy failed')) ? resolve() : setTimeout(poll, 10)); poll(); });
  await other.close();
  await rx.close();
  assert.is(rx.frames.length, 2);
  assert.is(fileLines(untrusted.file).length, 2);
  assert.match(logged.find((l) => l.msg.startsWith('syslog copy failed'))!.error!, /certificate/i);
});

test('a lost connection is retried with backoff and the lines sent meanwhile arrive after reconnecting, in order', async () => {
  const first = await receiver(net.createServer());
  const port = first.port;
  const fwd = new SyslogForwarder(parseSyslogUrl(`tcp://127.0.0.1:${port}`), { logger: silentLogger, minBackoffMs: 20, maxBackoffMs: 100 });
  await new Promise((r) => fwd.once('connected', r));
  fwd.send('{"n":1}', 'connect', Date.now());
  await first.waitFor(1);
  const lost = new Promise((r) => fwd.once('disconnected', r));
  await first.close();
  await lost;
  for (let n = 2; n <= 5; n++) fwd.send(`{"n":${n}}`, 'connect', Date.now());
  const second = await receiver(net.createServer(), port);
  await second.waitFor(4);
  await fwd.close();
  await second.close();
  assert.equal(first.frames.map((f) => f.msg), ['{"n":1}']);
  assert.equal(second.frames.map((f) => f.msg), ['{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']);
});

test('an unreachable receiver neither blocks nor fails the file, and its buffer is bounded (drops logged once)', async () => {
  const closed = net.createServer();
  const port = await new Promise<number>((r) => closed.listen(0, '127.0.0.1', () => r((closed.address() as net.AddressInfo).port)));
  await new Promise((r) => closed.close(r)); // nothing listens on this port now
  const logged: { msg: string }[] = [];
  const logger = createLogger({ write: (l) => logged.push(JSON.parse(l)) });
  const fwd = new SyslogForwarder(parseSyslogUrl(`tcp://127.0.0.1:${port}`), { logger, maxBuffered: 3, minBackoffMs: 10_000 });
  for (let n = 1; n <= 10; n++) fwd.send(`{"n":${n}}`, 'connect', Date.now());
  assert.is(logged.filter((l) => l.msg.startsWith('syslog buffer full')).length, 1);
  await fwd.close();

  const cfg = auditConfig(`tcp://127.0.0.1:${port}`);
  const log = await AuditLog.open(cfg, { logger: silentLogger });
  for (let n = 0; n < 50; n++) log.record({ event: 'connect', session: `s${n}`, address: '127.0.0.1', tls: false });
  await log.flush();
  assert.not.ok(log.blocked());
  await log.close();
  assert.is(fileLines(cfg.file).length, 51);
});

test('a receiver that stores each message one per line holds a chain that verify --copy checks across rotations', async () => {
  const rx = await receiver(net.createServer());
  const cfg = auditConfig(`tcp://127.0.0.1:${rx.port}`);
  let t = Date.parse('2026-12-01T23:59:58Z');
  const log = await AuditLog.open(cfg, { logger: silentLogger, now: () => new Date(t++) });
  for (let n = 0; n < 3; n++) log.record({ event: 'connect', session: `a${n}`, address: '127.0.0.1', tls: false });
  await log.flush();
  t = Date.parse('2026-12-02T00:00:02Z');
  for (let n = 0; n < 3; n++) log.record({ event: 'connect', session: `b${n}`, address: '127.0.0.1', tls: false });
  await log.flush();
  await rx.waitFor(8);
  await log.close();
  await rx.close();
  const copyDir = mkdtempSync(join(tmpdir(), 'pgveil-siem-'));
  made.push(copyDir);
  const copy = join(copyDir, 'siem-copy.log');
  writeFileSync(copy, rx.frames.map((f) => f.msg + '\n').join(''));
  assert.is((await verifyPath(join(cfg.file, '..'))).ok, true);
  const verdict = await verifyCopy(copy);
  assert.is(verdict.ok, true, JSON.stringify(verdict));
  assert.is(verdict.chains[0].records, 6);

  const lines = readFileSync(copy, 'utf8').split('\n');
  lines.splice(4, 1); // the second file's start record, as a receiver that lost a message would
  writeFileSync(copy, lines.join('\n'));
  const broken = await verifyCopy(copy);
  assert.is(broken.ok, false);
  assert.equal(broken.chains[0].problem, { file: copy, line: 5, message: broken.chains[0].problem!.message });
  assert.match(broken.chains[0].problem!.message, 'seq 5 is missing');
});

test.run();
