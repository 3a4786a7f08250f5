// Copies audit lines to a SIEM as RFC 5424 syslog messages over TCP or TLS,
// framed by octet counting (RFC 6587): `<len> <PRI>1 TS HOST pgveil PID MSGID - <json line>`.
// Best effort by design: send() never throws or waits, a lost connection is
// retried with backoff, and a bounded buffer holds what arrives meanwhile. The
// audit file, not this copy, is the record; the copy anchors its chain elsewhere.
import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../observe/log.js';
import { isoTime } from './chain.js';

export interface SyslogTarget { protocol: 'tcp' | 'tls'; host: string; port: number }

/** `tcp://host:port` or `tls://host:port` (IPv6 in brackets); the config schema has checked the shape. */
export function parseSyslogUrl(url: string): SyslogTarget {
  const m = /^(tcp|tls):\/\/(\[[0-9A-Fa-f:.]+\]|[^:/]+):([0-9]{1,5})$/.exec(url);
  if (!m) throw new Error(`audit.syslog: expected tcp://host:port or tls://host:port, got ${url}`);
  return { protocol: m[1] as 'tcp' | 'tls', host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

/** Facility 13 is "log audit" (RFC 5424, 6.2.1). */
const FACILITY = 13;
const WARNING = 4;
const INFO = 6;

/** Records an operator wants to see first get severity warning, the rest informational. */
function severity(event: string, line: string): number {
  if (event === 'lockout' || event === 'refused_connection' || event === 'audit_torn_line') return WARNING;
  if ((event === 'auth' && line.includes('"outcome":"failure"')) || (event === 'statement' && line.includes('"decision":"refused"'))) return WARNING;
  return INFO;
}

/** PRINTUSASCII without spaces, as HOSTNAME and MSGID must be; '-' when nothing is left. */
function header(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '-').slice(0, max);
  return clean || '-';
}

/** One octet-counted RFC 5424 frame carrying one audit line as its MSG. */
export function syslogFrame(line: string, event: string, ts: number, host: string, pid: number): Buffer {
  const message = `<${FACILITY * 8 + severity(event, line)}>1 ${isoTime(ts)} ${header(host, 255)} pgveil ${pid} ${header(event, 32)} - ${line}`;
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface SyslogOptions {
  logger: Logger;
  /** PEM CA bundle for tls://; absent = Node's bundled CA list. */
  ca?: string | Buffer;
  hostname?: string;
  /** Frames held while disconnected; more are dropped (and logged once per outage). Default 10000. */
  maxBuffered?: number;
  /** First reconnect delay, doubled per failure up to maxBackoffMs. Defaults 500 and 30000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Frames handed to a socket while its own buffer holds less than this; the rest wait in ours. */
const SOCKET_HIGH_WATER = 256 * 1024;

/** Emits 'connected' and 'disconnected' (for operators' logs and for tests). */
export class SyslogForwarder extends EventEmitter {
  private socket: net.Socket | null = null;
  private connected = false;
  private pending: Buffer[] = [];
  private dropped = 0;
  private failing = false;
  private backoff: number;
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly host: string;

  constructor(private readonly target: SyslogTarget, private readonly opts: SyslogOptions) {
    super();
    this.host = opts.hostname ?? osHostname();
    this.backoff = opts.minBackoffMs ?? 500;
    this.connect();
  }

  /** Queues one audit line; never throws, never waits. */
  send(line: string, event: string, ts: number): void {
    if (this.closing) return;
    const frame = syslogFrame(line, event, ts, this.host, process.pid);
    if (this.connected && this.pending.length === 0 && this.socket!.writableLength < SOCKET_HIGH_WATER) {
      this.socket!.write(frame);
      return;
    }
    if (this.pending.length >= (this.opts.maxBuffered ?? 10_000)) {
      if (this.dropped++ === 0) this.opts.logger.warn('syslog buffer full: audit records not copied to syslog until it drains', { target: this.describe() });
      return;
    }
    this.pending.push(frame);
  }

  /** Sends what is buffered if connected, then closes. Whatever cannot be sent is dropped. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    const socket = this.socket;
    if (!socket) return;
    if (this.connected) this.writePending();
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref(); // a receiver that never reads must not hold shutdown
    });
  }

  private connect(): void {
    const { protocol, host, port } = this.target;
    const socket = protocol === 'tls'
      ? tls.connect({ host, port, ca: this.opts.ca, servername: net.isIP(host) ? undefined : host, minVersion: 'TLSv1.2' })
      : net.connect({ host, port });
    this.socket = socket;
    socket.setKeepAlive(true);
    socket.once(protocol === 'tls' ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      this.backoff = this.opts.minBackoffMs ?? 500;
      if (this.failing) this.opts.logger.info('syslog copy reconnected', { target: this.describe(), dropped: this.dropped });
      this.failing = false;
      this.dropped = 0;
      this.writePending();
      this.emit('connected');
    });
    socket.on('drain', () => this.writePending());
    socket.on('data', () => { /* receivers do not answer; ignore anything they send */ });
    socket.on('error', (err) => {
      if (!this.failing && !this.closing) this.opts.logger.warn('syslog copy failed: retrying with backoff; the audit file is unaffected', { target: this.describe(), error: err.message });
      this.failing = true;
    });
    socket.on('close', () => {
      const was = this.connected;
      this.connected = false;
      this.socket = null;
      if (was) this.emit('disconnected');
      if (this.closing) return;
      if (!this.failing) this.opts.logger.warn('syslog connection closed: reconnecting', { target: this.describe() });
      this.failing = true;
      this.timer = setTimeout(() => { this.timer = null; this.connect(); }, this.backoff);
      this.timer.unref();
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
    });
  }

  private writePending(): void {
    const socket = this.socket;
    while (socket && this.connected && this.pending.length > 0 && socket.writableLength < SOCKET_HIGH_WATER) {
      socket.write(this.pending.shift()!);
    }
  }

  private describe(): string {
    return `${this.target.protocol}://${this.target.host.includes(':') ? `[${this.target.host}]` : this.target.host}:${this.target.port}`;
  }
}
