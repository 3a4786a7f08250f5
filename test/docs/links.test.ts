// The README, docs/ and the config samples are what a user of the repository
// reads, so everything they point at must be in the repository: a relative
// link or a cited path (`src/policy/literals.ts`) must exist, a link to a
// heading must find it, and no text may cite internal planning documents or
// issue numbers a reader cannot look up. No server needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Top-level directories and files of the repository a text may cite by path. */
const citedRoots = /^(?:src|test|bench|scripts|config|docs|bin|\.ci)\/|^(?:README\.md|Dockerfile|package\.json|tsconfig\.json)$/;
/** Files the samples name on purpose although they are not shipped (each deployment makes its own). */
const deploymentFiles = /^config\/(?:certs|secrets)\//;
const internalBriefs = /\b(?:SPEC|THREATS|DESIGN)\b|\b(?:spec|threats|design)\.md\b|\b(?:Spec|Threats|Design)\.md\b/;
const issueNumber = /\bissues?\s+#?\d+|\bissues?\s*#\d+|(?<![\w&/#])#\d+\b/i;

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
  return text.trim().toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Markdown without fenced code blocks (their text is shell or SQL, not citations). */
function withoutFences(markdown: string): string {
  let fenced = false;
  return markdown.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) { fenced = !fenced; return ''; }
    return fenced ? '' : line;
  }).join('\n');
}

/** The anchors a markdown file offers: one per heading, numbered on repeats as GitHub does. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of withoutFences(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** A cited repository path as it exists in the checkout: compiled `dist/…js` or `build/…js` names its `.ts` source. */
function sourceOf(path: string): string {
  const compiled = /^(?:dist|build)\/(.*)\.js$/.exec(path);
  return compiled ? `${compiled[1]}.ts` : path;
}

/** Path-like words of a text that name something in the repository (relative to its root). */
function citedPaths(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/[\s`'"|]+/)) {
    const word = raw.replace(/^[(\[<{*,;:]+/, '').replace(/[)\]>},;:.*]+$/, '');
    if (!word || /[<>…*$]/.test(word)) continue; // placeholders such as `dist/<file>.js` or `$TMPDIR/…`
    const path = sourceOf(word.replace(/^\.\//, ''));
    if (citedRoots.test(path) && !deploymentFiles.test(path)) out.push(path);
  }
  return out;
}

/**
 * Every problem of one documentation file: a name of an internal brief, an
 * issue number, a relative link to a missing file or heading, a cited path
 * that does not exist. `file` is relative to `root`.
 */
export function problemsIn(root: string, file: string, text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const brief = internalBriefs.exec(line);
    if (brief) problems.push(`${file}:${i + 1}: names an internal document (${brief[0]}); cite a file in docs/ instead`);
    const issue = issueNumber.exec(line);
    if (issue) problems.push(`${file}:${i + 1}: cites an issue number (${issue[0].trim()}); say what it is instead`);
  });
  const markdown = file.endsWith('.md');
  let prose = markdown ? withoutFences(text) : text;
  if (markdown) {
    const links = /\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;
    for (const [, , target] of prose.matchAll(links)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [pathPart, anchor] = target.split('#', 2);
      const targetFile = pathPart ? join(dirname(join(root, file)), decodeURI(pathPart)) : join(root, file);
      const shown = relative(root, targetFile) || file;
      if (!existsSync(targetFile)) { problems.push(`${file}: links to ${target}, but ${shown} does not exist`); continue; }
      if (anchor !== undefined && targetFile.endsWith('.md') && !anchorsOf(readFileSync(targetFile, 'utf8')).has(anchor)) {
        problems.push(`${file}: links to ${target}, but ${shown} has no heading #${anchor}`);
      }
    }
    // External links keep their own names (PostgreSQL's `src/common/…`): only the repository's count below.
    prose = prose.replace(/\[((?:[^\[\]]|\[[^\]]*\])*)\]\([a-z][a-z0-9+.-]*:[^)]*\)/gi, '').replace(links, '$1');
  }
  for (const path of citedPaths(prose)) {
    if (!existsSync(join(root, path))) problems.push(`${file}: cites ${path}, which is not in the repository`);
  }
  if (!markdown) {
    // A sample's `$schema=` is relative to the sample itself.
    for (const [, schema] of text.matchAll(/\$schema=(\S+)/g)) {
      if (!existsSync(join(dirname(join(root, file)), schema))) problems.push(`${file}: $schema=${schema} does not exist`);
    }
  }
  return problems;
}

/** What a user of the repository reads: the README, docs/ and the config samples with their schemas. */
function documentationFiles(): string[] {
  const inDir = (dir: string, ext: RegExp) => existsSync(join(repo, dir))
    ? readdirSync(join(repo, dir)).filter((n) => ext.test(n)).sort().map((n) => `${dir}/${n}`)
    : [];
  return ['README.md', ...inDir('docs', /\.md$/), ...inDir('docs/operations', /\.md$/), ...inDir('config', /\.ya?ml$/), ...inDir('config/schema', /\.json$/)];
}

test('the three docs exist and the README links each of them', () => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  for (const doc of ['docs/threat-model.md', 'docs/configuration.md', 'docs/architecture.md']) {
    assert.ok(existsSync(join(repo, doc)), `${doc} exists`);
    assert.ok(readme.includes(`](${doc}`), `README.md links ${doc}`);
  }
});

test('README.md, docs/ and the config samples cite only what the repository holds', () => {
  const files = documentationFiles();
  assert.ok(files.length >= 9, `found ${files.join(', ')}`);
  const problems = files.flatMap((file) => problemsIn(repo, file, readFileSync(join(repo, file), 'utf8')));
  assert.equal(problems, [], problems.join('\n'));
});

test('the checker catches each kind of bad citation', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['docs/x.md', 'See SPEC.md §2.', /internal document \(SPEC/],
    ['docs/x.md', 'as THREATS E3 says', /internal document \(THREATS/],
    ['docs/x.md', 'the design notes (design.md)', /internal document/],
    ['README.md', 'Done in issue 11.', /issue number \(issue 11\)/],
    ['README.md', 'Fixed by #11.', /issue number \(#11\)/],
    ['README.md', 'See [the guide](docs/missing.md).', /docs\/missing\.md does not exist/],
    ['README.md', 'See [lockout](#no-such-heading).', /has no heading #no-such-heading/],
    ['README.md', 'See [the sample](config/pgveil.yaml#x).', /^$/],
    ['README.md', 'Literals are made in `src/policy/nowhere.ts`.', /cites src\/policy\/nowhere\.ts/],
    ['README.md', 'Run `node dist/bench/nothing.js`.', /cites bench\/nothing\.ts/],
    ['README.md', 'Run `node build/bench/nothing.js`.', /cites bench\/nothing\.ts/],
    ['config/pgveil.yaml', '# Reference: docs/nothing.md', /cites docs\/nothing\.md/],
    ['config/pgveil.yaml', '# yaml-language-server: $schema=schema/none.json', /\$schema=schema\/none\.json does not exist/],
  ];
  for (const [file, text, expected] of cases) {
    const problems = problemsIn(repo, file, text);
    if (expected.source === '^$') assert.equal(problems, [], `${text}: ${problems.join('; ')}`);
    else assert.ok(problems.some((p) => expected.test(p)), `${text} → ${problems.join('; ') || 'no problem found'}`);
  }
  const fine: Array<[string, string]> = [
    ['README.md', 'Quotes come from `src/policy/literals.ts`; run `node dist/bench/stall.js [runs]`.'],
    ['README.md', 'Put the key in `config/secrets/master.key` (not shipped).'],
    ['README.md', 'As PostgreSQL does ([`src/common/saslprep.c`](https://example.com/saslprep.c)).'],
    ['README.md', 'The issuer and the never-issued 9xx area; `$1` and `&#35;` are not issues.'],
    ['docs/x.md', 'The design keeps one spec of threats in mind.'],
    ['config/pgveil.yaml', '# yaml-language-server: $schema=schema/pgveil.schema.json'],
  ];
  for (const [file, text] of fine) assert.equal(problemsIn(repo, file, text), [], text);
});

/** Directories of code, tests, benchmarks, scripts and config whose comments a user of the repository reads. */
const codeRoots = ['src', 'test', 'bench', 'scripts', 'config'];
/** Files left out of the code check: the test that reads an optional SPEC.md fixture by that name, and this directory's own examples of bad citations. */
const codeCheckExempt = [/^test\/config\/load\.test\.ts$/, /^test\/docs\//];
/** An internal brief named in code: the file, a section of SPEC or DESIGN, or a THREATS row (the ids themselves are fine, defined in docs/threat-model.md). */
const codeBriefCitation = /\b(?:SPEC|THREATS|DESIGN|spec|threats|design)\.md\b|\b(?:SPEC|DESIGN)\s*§|\bTHREATS\s+[A-F]\d*\b|\bTHREATS\s*$|\b[Ii]ssue\s+\d+\b/;

/** Every text file under the code roots, relative to the repository. */
function codeFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(repo, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (/\.(?:ts|js|mjs|cjs|json|ya?ml|sh|sql)$/.test(entry.name)) out.push(path);
    }
  };
  for (const root of codeRoots) if (existsSync(join(repo, root))) walk(root);
  return out.sort();
}

/** The lines of one code file that cite an internal brief or an issue number. */
export function briefCitationsIn(file: string, text: string): string[] {
  return text.split('\n').flatMap((line, i) => {
    const hit = codeBriefCitation.exec(line);
    return hit ? [`${file}:${i + 1}: cites ${hit[0].trim()}; cite docs/ or README.md instead`] : [];
  });
}

test('source, test, bench, script and config files cite no internal document', () => {
  const files = codeFiles().filter((f) => !codeCheckExempt.some((re) => re.test(f)));
  assert.ok(files.length > 100, `found ${files.length} files`);
  const problems = files.flatMap((file) => briefCitationsIn(file, readFileSync(join(repo, file), 'utf8')));
  assert.equal(problems, [], problems.join('\n'));
});

test('the code check catches each kind of internal citation and passes threat ids', () => {
  for (const line of ['// see THREATS.md', '// (SPEC §2.1)', '// DESIGN §3 step 5', '// (THREATS E2)', '// that (THREATS', '// (issue 5 point 7)', '// spec.md']) {
    assert.is(briefCitationsIn('src/x.ts', line).length, 1, line);
  }
  for (const line of ['// (threat E2; docs/threat-model.md)', "WHERE routine_name = 'SPECIFIC_NAME'", "test('A6 query_to_xml is refused'", '// a specification', '// guards against threats']) {
    assert.equal(briefCitationsIn('src/x.ts', line), [], line);
  }
});

test('heading anchors follow GitHub: punctuation dropped, repeats numbered', () => {
  assert.is(slug('`pgveil keygen` — make a master key'), 'pgveil-keygen--make-a-master-key');
  assert.is(slug('Scramble and hash: the keyed helpers'), 'scramble-and-hash-the-keyed-helpers');
  assert.is(slug('A1. Spelling of names'), 'a1-spelling-of-names');
  const anchors = anchorsOf('# Title\n## Notes\n```sh\n# not a heading\n```\n## Notes\n');
  assert.equal([...anchors], ['title', 'notes', 'notes-1']);
});

test.run();
