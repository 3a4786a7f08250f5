// Upstream minors with a known way to read row-security-filtered or
// view-hidden rows through planner statistics. The fixed minors are those of
// the PostgreSQL project's advisories: CVE-2025-8713 (17.6, 16.10, 15.14,
// 14.19, 13.22; 18.0 shipped fixed) and CVE-2019-10130 (11.3, 10.8, 9.6.13,
// 9.5.17; row security, which it concerns, began in 9.5). Every major pgveil
// serves (14+) is past CVE-2019-10130; it is kept so the table is whole.
import type { Finding } from './finding.js';

export interface Advisory {
  cve: string;
  summary: string;
  /** Major ("17", "9.6") → first fixed minor. */
  fixed: Readonly<Record<string, number>>;
  /** Majors before this one ("9.5") never had the flaw; undefined when every older major has it. */
  firstAffected?: string;
}

export const statisticsAdvisories: readonly Advisory[] = [
  {
    cve: 'CVE-2025-8713',
    summary: 'optimizer statistics can expose sampled data within a view, partition or child table: a leaky operator reads most-common values and histograms past view privileges and row security',
    fixed: { '17': 6, '16': 10, '15': 14, '14': 19, '13': 22 },
  },
  {
    cve: 'CVE-2019-10130',
    summary: 'selectivity estimators bypass row security: a leaky operator reads the most common values of columns whose rows row security hides',
    fixed: { '11': 3, '10': 8, '9.6': 13, '9.5': 17 },
    firstAffected: '9.5',
  },
];

export interface ParsedVersion { major: string; minor: number }

/** server_version_num → major and minor: 160003 → 16 / 3, 90613 → 9.6 / 13. */
export function parseVersionNum(num: number): ParsedVersion {
  if (num >= 100000) return { major: String(Math.floor(num / 10000)), minor: num % 10000 };
  return { major: `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}`, minor: num % 100 };
}

/** Majors compare numerically part by part ("9.6" < "10"). */
function compareMajor(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  return (pa[0] - pb[0]) || ((pa[1] ?? 0) - (pb[1] ?? 0));
}

export interface Exposure { advisory: Advisory; version: string; fixedIn?: string }

/** The advisories a server of `num` is exposed to; fixedIn absent when its major never got a fix (end of life). */
export function exposuresOf(num: number, advisories: readonly Advisory[] = statisticsAdvisories): Exposure[] {
  const { major, minor } = parseVersionNum(num);
  const version = `${major}.${minor}`;
  const out: Exposure[] = [];
  for (const advisory of advisories) {
    const majors = Object.keys(advisory.fixed).sort(compareMajor);
    const newest = majors[majors.length - 1];
    if (compareMajor(major, newest) > 0) continue; // released after the fix
    if (advisory.firstAffected && compareMajor(major, advisory.firstAffected) < 0) continue;
    const first = advisory.fixed[major];
    if (first === undefined) out.push({ advisory, version });
    else if (minor < first) out.push({ advisory, version, fixedIn: `${major}.${first}` });
  }
  return out;
}

export function advisoryFindings(num: number): Finding[] {
  return exposuresOf(num).map(({ advisory, version, fixedIn }) => ({
    check: `upstream-minor-${advisory.cve.toLowerCase()}`, kind: 'upstream' as const,
    subject: `the upstream is PostgreSQL ${version}, affected by ${advisory.cve}${fixedIn ? ` (fixed in ${fixedIn})` : ' (no fixed minor for this major)'}`,
    why: `${advisory.summary}. It needs a role that can create an operator; through pgveil that takes a missed route and CREATE somewhere, but any other role of the database can use it`,
    sql: [],
    fix: fixedIn
      ? `upgrade to PostgreSQL ${fixedIn} or later (a minor release: new binaries and a restart, no dump and restore); fixed minors: ${Object.entries(advisory.fixed).map(([m, n]) => `${m}.${n}`).join(', ')}`
      : `upgrade to a supported major; fixed minors: ${Object.entries(advisory.fixed).map(([m, n]) => `${m}.${n}`).join(', ')}`,
  }));
}
