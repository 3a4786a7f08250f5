// Ownership filters and custom masks are parsed with PostgreSQL's own grammar
// (libpg-query) in the form serve will send them: each `${user.*}` replaced
// by a parenthesised literal, as binding does, and wrapped in parentheses. A
// filter that is not one valid expression would otherwise pass the loader
// and fail (or change meaning) only when a user's query runs.
import { loadModule, parseSync } from 'libpg-query';
import type { Template } from './template.js';

// The loader is synchronous; the parser's WebAssembly is loaded once when this module is first imported.
await loadModule();

/** Why the template is not one SQL expression, or undefined when it is. */
export function expressionSyntaxProblem(template: Template): string | undefined {
  let text = template.parts[0];
  for (let i = 0; i < template.slots.length; i++) {
    text += (template.slots[i] === 'column' ? '"pgveil_column"' : "('')") + template.parts[i + 1];
  }
  let statements: unknown[];
  try {
    statements = parseSync(`SELECT 1 WHERE (${text})`).stmts ?? [];
  } catch (err) {
    return `not a valid SQL expression: ${err instanceof Error ? err.message : String(err)}`;
  }
  // Unreachable while template.ts refuses ";" and unbalanced parentheses; kept so this check stands alone.
  return statements.length === 1 ? undefined : 'not one SQL expression';
}
