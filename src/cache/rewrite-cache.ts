// The rewrite cache (docs/architecture.md: the cache step of the Query walk): outcomes of the rewriter — rewritten
// SQL, templates, refusals — under (policy generation, profile key,
// search_path, text), where text is either the full SQL or its shape key.
//
// Keys are one string concatenation: a prefix built once per generation
// ('x' or 's' for full text or shape, then the generation), then profile key,
// search_path and text, separated by NUL. NUL never occurs in a profile key
// or a search_path (server settings are NUL-terminated strings; set* checks),
// so the first two separators split a key unambiguously; the text comes last
// because shape keys contain NUL markers. A hit allocates only that key.
//
// Generations: the cache serves one generation at a time. Lookups with an
// older generation miss, stores with an older one are dropped (a statement
// rewritten under the old policy while a reload ran must not reach the new
// generation), and the first use of a newer one — or newGeneration() —
// clears every entry at once, so old ones are unreachable and freed.
//
// Bounds: at most maxEntries entries and about maxBytes bytes (config
// `cache.maxBytes`), whichever is reached first evicts the least recently
// used. An entry's size is estimated once, when it is stored (a miss, which
// has just parsed and rewritten the statement, so the walk is noise next to
// it); hits do not touch sizes. The estimate counts UTF-16 strings at 2 bytes
// a character (key and every string of the outcome: rewritten SQL, template
// pieces, error texts), typed arrays by their bytes, and a fixed overhead per
// object. An entry larger than maxBytes is simply not cached.
import { LRUCache } from 'lru-cache';

export interface RewriteCacheStats {
  /** Lookups answered, of both kinds. */
  hits: number;
  /** The part of `hits` answered by a shape entry. */
  shapeHits: number;
  /** Statements that missed, as reported through recordMiss. */
  misses: number;
  /** Entries pushed out by the bound (not those dropped by a new generation). */
  evictions: number;
  entries: number;
  maxEntries: number;
  /** Total time spent on misses (parse, analyze, splice, verify), in milliseconds. */
  missMs: number;
  generation: number;
}

const SEP = '\u0000';

/** Documented default (docs/configuration.md) of `cache.maxBytes`: 64MB. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

const OBJECT_OVERHEAD = 64;

/** Estimated bytes held by a cached outcome (see the header); bounded depth, so a cycle cannot hang it. */
export function estimateBytes(value: unknown, depth = 0): number {
  if (typeof value === 'string') return 2 * value.length;
  if (value === null || typeof value !== 'object') return 8;
  if (ArrayBuffer.isView(value)) return OBJECT_OVERHEAD + value.byteLength;
  if (depth >= 6) return OBJECT_OVERHEAD;
  let total = OBJECT_OVERHEAD;
  if (Array.isArray(value)) {
    for (const item of value) total += 8 + estimateBytes(item, depth + 1);
  } else {
    for (const key of Object.keys(value)) total += 8 + estimateBytes((value as Record<string, unknown>)[key], depth + 1);
    if (value instanceof Error) total += 2 * value.message.length; // not an own enumerable property
  }
  return total;
}

export class RewriteCache<Outcome extends {}> {
  private readonly lru: LRUCache<string, Outcome>;
  private generation = 0;
  private exactPrefix = `x0${SEP}`;
  private shapePrefix = `s0${SEP}`;
  private hits = 0;
  private shapeHits = 0;
  private misses = 0;
  private evictions = 0;
  private missMs = 0;

  /**
   * @param maxEntries config `cache.maxEntries`
   * @param maxBytes config `cache.maxBytes` (bytes); default 64MB
   */
  constructor(readonly maxEntries: number, readonly maxBytes: number = DEFAULT_MAX_BYTES) {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 1)) throw new RangeError('maxBytes must be a positive integer');
    this.lru = new LRUCache<string, Outcome>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (value, key) => Math.max(1, OBJECT_OVERHEAD + 2 * key.length + estimateBytes(value)),
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.evictions++;
      },
    });
  }

  /** The outcome cached for this exact statement text. */
  getExact(generation: number, profileKey: string, searchPath: string, sql: string): Outcome | undefined {
    if (generation !== this.generation && !this.reach(generation)) return undefined;
    const hit = this.lru.get(this.exactPrefix + profileKey + SEP + searchPath + SEP + sql);
    if (hit !== undefined) this.hits++;
    return hit;
  }

  /** The outcome (a template) cached for statements of this shape. */
  getShape(generation: number, profileKey: string, searchPath: string, shapeKey: string): Outcome | undefined {
    if (generation !== this.generation && !this.reach(generation)) return undefined;
    const hit = this.lru.get(this.shapePrefix + profileKey + SEP + searchPath + SEP + shapeKey);
    if (hit !== undefined) {
      this.hits++;
      this.shapeHits++;
    }
    return hit;
  }

  setExact(generation: number, profileKey: string, searchPath: string, sql: string, outcome: Outcome): void {
    if (!this.storable(generation, profileKey, searchPath)) return;
    this.lru.set(this.exactPrefix + profileKey + SEP + searchPath + SEP + sql, outcome);
  }

  setShape(generation: number, profileKey: string, searchPath: string, shapeKey: string, outcome: Outcome): void {
    if (!this.storable(generation, profileKey, searchPath)) return;
    this.lru.set(this.shapePrefix + profileKey + SEP + searchPath + SEP + shapeKey, outcome);
  }

  /** One statement missed every lookup and took `ms` to rewrite. */
  recordMiss(ms: number): void {
    this.misses++;
    this.missMs += ms;
  }

  /** Switches to a newer policy generation, dropping every entry. Older generations are ignored. */
  newGeneration(generation: number): void {
    if (generation <= this.generation) return;
    this.generation = generation;
    this.exactPrefix = `x${generation}${SEP}`;
    this.shapePrefix = `s${generation}${SEP}`;
    this.lru.clear();
  }

  /** Estimated bytes the entries hold now (what maxBytes bounds). */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  stats(): RewriteCacheStats {
    return {
      hits: this.hits,
      shapeHits: this.shapeHits,
      misses: this.misses,
      evictions: this.evictions,
      entries: this.lru.size,
      maxEntries: this.maxEntries,
      missMs: this.missMs,
      generation: this.generation,
    };
  }

  /** True when `generation` is (now) the current one. */
  private reach(generation: number): boolean {
    this.newGeneration(generation);
    return generation === this.generation;
  }

  private storable(generation: number, profileKey: string, searchPath: string): boolean {
    if (profileKey.includes(SEP) || searchPath.includes(SEP)) throw new RangeError('profile key and search_path must not contain NUL');
    return generation === this.generation || this.reach(generation);
  }
}
