// Asking upstream for its search_path. PostgreSQL 18 reports every change
// as a ParameterStatus; 14–17 do not, so pgveil asks at session start and
// after any statement that may have changed it — whatever set it (ALTER
// DATABASE/ROLE … SET, postgresql.conf, SET, SET LOCAL, RESET, a rollback,
// set_config). The question is pgveil's own simple Query; its answer never
// reaches the client.
import { writeQuery } from '../protocol/frontend-messages.js';

export const searchPathProbe = writeQuery(`SELECT pg_catalog.current_setting('search_path')`);
