// The words the report and the diff use for a cell of the effective-access
// matrix, so that both say the same thing the same way.
import { describeMask } from '../policy/mask-kinds.js';
import type { AccessCell, AccessMatrix, SubjectRow } from '../policy/effective-access.js';
import type { MaskSpec } from '../policy/types.js';

export const AS_STORED = 'as stored';
export const ALL_ROWS = 'all rows';

/** "allowed" / "denied", and for a group row whose answer may differ by member, that it may. */
export function accessText(cell: AccessCell): string {
  const word = cell.access ? 'allowed' : 'denied';
  return cell.conditional ? `${word} (may differ by organization or user)` : word;
}

/** The AND of the filters as serve applies them, or "all rows". */
export function filterText(filters: readonly string[]): string {
  return filters.length ? filters.join(' AND ') : ALL_ROWS;
}

export function maskText(spec: MaskSpec | undefined): string {
  return spec ? describeMask(spec) : AS_STORED;
}

/** `user alice@acme.com` / `group analysts`. */
export function subjectText(row: Pick<SubjectRow, 'kind' | 'name'>): string {
  return `${row.kind} ${row.name}`;
}

/** What a user row adds after the name: organization, groups, disabled. */
export function subjectNote(row: SubjectRow): string {
  if (row.kind === 'group') return 'membership alone, see the legend';
  const parts = [`org ${row.org ?? '(none)'}`];
  if (row.groups?.length) parts.push(`groups ${row.groups.join(', ')}`);
  if (row.disabled) parts.push('disabled: cannot log in');
  return parts.join('; ');
}

/** The sentences that hold for every relation: the defaults and the layers switched off. */
export function policyWideFacts(matrix: AccessMatrix): string[] {
  const facts = [
    matrix.defaults.unlistedRelations === 'allow'
      ? 'Relations the policy does not list: allowed for every user, every row, every column as stored (defaults.unlistedRelations: allow).'
      : 'Relations the policy does not list: denied to every user (defaults.unlistedRelations: deny).',
    matrix.defaults.writes === 'allow'
      ? 'Writes (INSERT, UPDATE, DELETE, MERGE, COPY FROM) to listed tables: allowed (defaults.writes: allow).'
      : 'Writes (INSERT, UPDATE, DELETE, MERGE, COPY FROM) to listed tables: refused (defaults.writes: deny).',
  ];
  for (const layer of ['access', 'ownership', 'redaction'] as const) {
    if (!matrix.layers[layer]) facts.push(`The ${layer} layer is switched off (layers.${layer}: false): none of its rules apply.`);
  }
  return facts;
}

/** The legend both formats print. */
export const legend: readonly string[] = [
  'Access: allowed, or denied (the user gets "permission denied"; no filter or columns apply). In a group row, "may differ by organization or user" means the access rules also name organizations or users, so a member\'s own row may say otherwise; the filter and columns shown then are those of a member who is allowed.',
  'Rows: the row filter that applies, AND-combined; "all rows" when none does. User rows show it exactly as pgveil applies it, attributes bound as quoted literals; "false" means an attribute the filter needs is missing, so the user sees no rows.',
  'Columns: how each column the policy names is presented (the mask and its options); "as stored" when no mask applies to the subject. Columns the policy does not name are shown as stored.',
  'Group rows: what membership alone decides, for a member no rule names by organization or user name and who is in no other group; placeholders such as ${user.org} are left unbound. A member\'s own user row is authoritative.',
];
