// The statistics-leak advisories by upstream version: which server_version_num
// values are exposed, the fixed minor each is told to upgrade to, and the
// finding text a DBA sees for an old minor. Pure: no server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { advisoryFindings, exposuresOf, parseVersionNum } from '../../src/live-check/advisories.js';

const cves = (num: number): string[] => exposuresOf(num).map((e) => `${e.advisory.cve}${e.fixedIn ? ` → ${e.fixedIn}` : ''}`);

test('server_version_num is read as major and minor, before and after 10', () => {
  assert.equal(parseVersionNum(180004), { major: '18', minor: 4 });
  assert.equal(parseVersionNum(140023), { major: '14', minor: 23 });
  assert.equal(parseVersionNum(90613), { major: '9.6', minor: 13 });
  assert.equal(parseVersionNum(90522), { major: '9.5', minor: 22 });
});

test('CVE-2025-8713: minors before 17.6, 16.10, 15.14, 14.19 are exposed; those and later are not', () => {
  assert.equal(cves(170005), ['CVE-2025-8713 → 17.6']);
  assert.equal(cves(160009), ['CVE-2025-8713 → 16.10']);
  assert.equal(cves(150013), ['CVE-2025-8713 → 15.14']);
  assert.equal(cves(140018), ['CVE-2025-8713 → 14.19']);
  assert.equal(cves(140000), ['CVE-2025-8713 → 14.19']);
  for (const fixed of [170006, 160010, 150014, 140019, 130022]) assert.equal(cves(fixed), [], String(fixed));
});

test('the embedded servers the tests run (14.23, 15.18, 16.14, 17.10, 18.4) and every 18.x are not exposed', () => {
  for (const num of [140023, 150018, 160014, 170010, 180004, 180000, 190000]) assert.equal(cves(num), [], String(num));
});

test('CVE-2019-10130: only 9.5 to 11 before 11.3, 10.8, 9.6.13, 9.5.17; no supported major is affected', () => {
  assert.equal(cves(110002).filter((c) => c.startsWith('CVE-2019')), ['CVE-2019-10130 → 11.3']);
  assert.equal(cves(100007).filter((c) => c.startsWith('CVE-2019')), ['CVE-2019-10130 → 10.8']);
  assert.equal(cves(90612).filter((c) => c.startsWith('CVE-2019')), ['CVE-2019-10130 → 9.6.13']);
  assert.equal(cves(90516).filter((c) => c.startsWith('CVE-2019')), ['CVE-2019-10130 → 9.5.17']);
  // 9.4 has no row security, so nothing for this advisory to bypass.
  assert.equal(cves(90421).filter((c) => c.startsWith('CVE-2019')), []);
  for (const num of [110003, 120000, 130000, 140000, 180000]) assert.equal(cves(num).filter((c) => c.startsWith('CVE-2019')), [], String(num));
});

test('an end-of-life major with no fixed minor is exposed with no minor to upgrade to', () => {
  assert.equal(cves(120022), ['CVE-2025-8713']);
});

test('the finding for an old minor names the version, the CVE, the minor to upgrade to and every fixed minor', () => {
  const [f, ...rest] = advisoryFindings(160003);
  assert.is(rest.length, 0);
  assert.is(f.check, 'upstream-minor-cve-2025-8713');
  assert.is(f.kind, 'upstream');
  assert.is(f.subject, 'the upstream is PostgreSQL 16.3, affected by CVE-2025-8713 (fixed in 16.10)');
  assert.match(f.why, /optimizer statistics can expose sampled data within a view, partition or child table/);
  assert.equal(f.sql, []);
  assert.is(f.fix, 'upgrade to PostgreSQL 16.10 or later (a minor release: new binaries and a restart, no dump and restore); fixed minors: 13.22, 14.19, 15.14, 16.10, 17.6');
  assert.equal(advisoryFindings(180004), []);
});

test.run();
