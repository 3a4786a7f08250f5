// What a reload loosens: every way the next policy may show someone more than
// the previous one did (a layer switched off, a default opened, a table,
// filter, mask or deny removed or weakened). A reload is applied either way;
// this list is what serve logs at `warn` so that a careless edit is noticed.
// Conservative: a change that cannot be shown to be at least as strict (a
// rewritten filter, a different custom mask) counts as loosening.
import type { Except, Subjects } from '../config/types.js';
import { stableStringify } from './canonical.js';
import type { CompiledMask, CompiledPolicy, CompiledTable } from './compile.js';
import { mostRestrictive } from './precedence.js';

const KINDS = ['orgs', 'groups', 'users'] as const;

/** The policy's statement rules (functions.allow, channels.listen): an entry added lets users run more. */
export interface RuleSets {
  allowedFunctions: ReadonlySet<string>;
  listenChannels: ReadonlySet<string>;
}

/** Entries added to functions.allow or channels.listen. */
export function ruleLoosenings(prev: RuleSets, next: RuleSets): string[] {
  const out: string[] = [];
  for (const f of next.allowedFunctions) if (!prev.allowedFunctions.has(f)) out.push(`functions.allow: ${f} added (users may call it)`);
  for (const c of next.listenChannels) if (!prev.listenChannels.has(c)) out.push(`channels.listen: ${c} added (users may LISTEN on it)`);
  return out;
}

/** Human-readable loosenings from `prev` to `next`; empty when nothing loosened. */
export function loosenings(prev: CompiledPolicy, next: CompiledPolicy): string[] {
  const out: string[] = [];
  for (const layer of ['access', 'ownership', 'redaction'] as const) {
    if (prev.layers[layer] && !next.layers[layer]) out.push(`layers.${layer} switched off`);
  }
  if (prev.defaults.unlistedRelations === 'deny' && next.defaults.unlistedRelations === 'allow') {
    out.push('defaults.unlistedRelations: deny → allow (tables not listed became usable)');
  }
  if (prev.defaults.writes === 'deny' && next.defaults.writes === 'allow') out.push('defaults.writes: deny → allow');
  for (const [relation, before] of prev.tables) {
    const after = next.tables.get(relation);
    if (!after) {
      // Under allowlist mode an unlisted table is unusable: removing it tightens.
      if (next.defaults.unlistedRelations === 'allow') out.push(`${relation}: removed from the policy (no longer protected)`);
      continue;
    }
    out.push(...accessLoosenings(relation, before.access, after.access));
    out.push(...filterLoosenings(relation, before, after));
    out.push(...maskLoosenings(relation, before, after));
  }
  return out;
}

function accessLoosenings(relation: string, before: CompiledTable['access'], after: CompiledTable['access']): string[] {
  const out: string[] = [];
  if (before?.allow) {
    if (!after?.allow) out.push(`${relation}: access.allow removed`);
    else {
      const more = added(before.allow, after.allow);
      if (more) out.push(`${relation}: access.allow widened (${more})`);
      const fewer = removed(before.allow.except, after.allow.except);
      if (fewer) out.push(`${relation}: access.allow.except narrowed (${fewer})`);
    }
  }
  if (before?.deny) {
    if (!after?.deny) out.push(`${relation}: access.deny removed`);
    else {
      const fewer = removed(before.deny, after.deny);
      if (fewer) out.push(`${relation}: access.deny narrowed (${fewer})`);
      const more = added(before.deny.except, after.deny.except);
      if (more) out.push(`${relation}: access.deny.except widened (${more})`);
    }
  }
  return out;
}

function filterLoosenings(relation: string, before: CompiledTable, after: CompiledTable): string[] {
  const out: string[] = [];
  for (const f of before.filters) {
    const same = after.filters.filter((g) => g.source === f.source);
    if (!same.length) { out.push(`${relation}: ownership filter ${JSON.stringify(f.source)} removed or changed`); continue; }
    // Still there: loosened only if every copy of it now exempts someone it did not.
    const widened = same.map((g) => added(f.except, g.except));
    if (widened.every(Boolean)) out.push(`${relation}: ownership filter ${JSON.stringify(f.source)} except widened (${widened[0]})`);
  }
  return out;
}

function maskLoosenings(relation: string, before: CompiledTable, after: CompiledTable): string[] {
  const out: string[] = [];
  for (const [column, rules] of before.masks) {
    const where = `${relation}.${column}`;
    const next = after.masks.get(column);
    if (!next?.length) { out.push(`${where}: mask ${describe(rules)} removed`); continue; }
    const was = strictest(rules);
    const now = strictest(next);
    if (was && now && stableStringify(mostRestrictive([was, now])) !== stableStringify(now)) {
      out.push(`${where}: mask ${describe(rules)} → ${describe(next)}`);
    }
    const more = added(exemptions(rules), exemptions(next));
    if (more) out.push(`${where}: mask except widened (${more})`);
  }
  return out;
}

/** The mask that applies to someone no rule exempts. */
function strictest(rules: CompiledMask[]) {
  return mostRestrictive(rules.map((r) => ({ kind: r.kind, options: r.options })));
}

function describe(rules: CompiledMask[]): string {
  return rules.map((r) => r.kind).join('+');
}

/** Everyone any rule of the column exempts. */
function exemptions(rules: CompiledMask[]): Except {
  const all: Except = { orgs: [], groups: [], users: [] };
  for (const r of rules) for (const k of KINDS) all[k].push(...(r.except?.[k] ?? []));
  return all;
}

type Named = Subjects | Except | undefined;

/** "+orgs: a, b; +groups: c" for subjects in `after` that `before` lacks; '' when none. */
function added(before: Named, after: Named): string {
  return difference(before, after, '+');
}

/** "-orgs: a" for subjects in `before` that `after` lacks; '' when none. */
function removed(before: Named, after: Named): string {
  return difference(after, before, '-');
}

function difference(base: Named, other: Named, sign: string): string {
  const parts: string[] = [];
  for (const k of KINDS) {
    const had = new Set(base?.[k] ?? []);
    const extra = (other?.[k] ?? []).filter((s) => !had.has(s));
    if (extra.length) parts.push(`${sign}${k}: ${extra.join(', ')}`);
  }
  return parts.join('; ');
}
