// What a statement does to the upstream session's state. The type is
// defined where the analyzer emits it (rewrite/effects.ts: rewrite/ must not
// import engine/); the engine and the session read it from here.
import type { Outcome } from '../rewrite/rewrite.js';
import type { SessionEffects } from '../rewrite/effects.js';

export type { ObjectEffect, ObjectKind, SessionEffects } from '../rewrite/effects.js';

/** The session-state consequences of an outcome; undefined for the common statement that has none (hot path). */
export function effectsOf(outcome: Outcome): SessionEffects | undefined {
  if (!outcome.searchPathChange && !outcome.endsTransaction && !outcome.objects.length) return undefined;
  return { changesSearchPath: Boolean(outcome.searchPathChange), endsTransaction: Boolean(outcome.endsTransaction), objects: [...outcome.objects] };
}
