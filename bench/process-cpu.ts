// CPU time of a process from its own counters (/proc/<pid>/stat: utime +
// stime), for the proxies the benches compare. What each proxy spends per
// statement decides how many cores it needs, and unlike tps it does not
// depend on the load generator sharing the machine.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's counters (USER_HZ: 100 on Linux builds in use). */
const TICKS_PER_SECOND = 100;

/** User + system CPU of `pid` so far, in µs; NaN when it cannot be read. */
export function processCpuMicros(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
  } catch {
    return Number.NaN;
  }
}
