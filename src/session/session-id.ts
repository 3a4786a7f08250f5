// Session ids: `<workerId>-<counter>` in base 36 (worker 0 is a
// single-process pgveil), unique within one pgveil and across its workers,
// so the id also says which worker owns a session. A restarted worker keeps
// its worker id; its counter starts past everything an earlier process of
// that id can have issued, so ids stay unique for the life of the pgveil.
const PER_INCARNATION = 2 ** 40;

/** Issues the ids of one process's sessions; `incarnation` counts the starts of this worker id (1 for the first). */
export function sessionIds(workerId: number, incarnation = 1): () => string {
  let counter = (incarnation - 1) * PER_INCARNATION;
  const prefix = `${workerId.toString(36)}-`;
  return () => prefix + (++counter).toString(36);
}

/** The worker that owns a session id (0 for a single-process pgveil); undefined when the id is malformed. */
export function workerOfSession(id: string): number | undefined {
  const m = /^([0-9a-z]{1,2})-[0-9a-z]{1,12}$/.exec(id);
  return m ? parseInt(m[1], 36) : undefined;
}
