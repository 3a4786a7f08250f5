// CPU time of a process from its own counters (/proc/<pid>/stat: utime +
// stime), for the proxies the benches compare. What each proxy spends per
// statement decides how many cores it needs, and unlike tps it does not
// depend on the load generator sharing the machine.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's counters (USER_HZ: 100 on Linux builds in use). */
const TICKS_PER_SECOND = 100;

/** User + system CPU of `pid` so far, in µs; NaN when it cannot be read. */
export function processCpuMicros(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  const fields = statFields(pid);
  return fields ? ticksToMicros(Number(fields[11]) + Number(fields[12])) : Number.NaN;
}

/**
 * CPU of `pid` and its children so far, in µs: its own, its reaped children's
 * (cutime + cstime) and its live children's. For a server that forks a
 * process per connection (PostgreSQL's postmaster): a child that exits
 * between two readings moves from the live sum to the reaped one whole, so
 * the difference counts only what it spent in between.
 */
export function processTreeCpuMicros(pid: number): number {
  const own = statFields(pid);
  if (!own) return Number.NaN;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticksToMicros(ticks);
}

const ticksToMicros = (ticks: number) => (ticks / TICKS_PER_SECOND) * 1e6;

/** /proc/<pid>/stat from the state field on (index 0: state, 1: ppid, 11/12: utime/stime, 13/14: cutime/cstime). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
