// Functions pgveil refuses wherever they appear in a statement: they run SQL
// given as a string (threat A6 in docs/threat-model.md), reach files, programs or large objects
// (A9), open channels between sessions (C4), or show other sessions' text
// (B6). Each has a test named after its row in docs/threat-model.md.

export const refusedFunctions: ReadonlyMap<string, string> = new Map([
  // A6: SQL from strings
  ...['query_to_xml', 'query_to_xml_and_xmlschema', 'query_to_xmlschema', 'table_to_xml', 'table_to_xml_and_xmlschema',
    'table_to_xmlschema', 'schema_to_xml', 'schema_to_xml_and_xmlschema', 'schema_to_xmlschema', 'database_to_xml',
    'database_to_xml_and_xmlschema', 'database_to_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'ts_stat',
    'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_send_query', 'dblink_get_result', 'dblink_connect',
    'dblink_connect_u', 'dblink_build_sql_insert', 'dblink_build_sql_update', 'dblink_build_sql_delete', 'ts_rewrite',
  ].map((f) => [f, 'it runs SQL given as a string'] as const),
  // A5: sequences count rows of every org
  ...['pg_sequence_last_value', 'pg_get_sequence_data', 'pg_sequence_parameters', 'nextval', 'currval', 'setval', 'lastval',
  ].map((f) => [f, 'sequence values count rows of every org'] as const),
  // A9: files, programs, large objects
  ...['pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_ls_logdir', 'pg_ls_waldir', 'pg_ls_tmpdir',
    'pg_ls_archive_statusdir', 'pg_ls_logicalsnapdir', 'pg_ls_logicalmapdir', 'pg_ls_replslotdir', 'pg_file_write',
    'pg_ls_summariesdir', // 17+
    'pg_read_file_old', // 13–16 (the pre-13 signature, kept for old clients)
    'pg_file_rename', 'pg_file_unlink', 'pg_file_sync', 'pg_logdir_ls', // adminpack (14–16; removed in 17), besides pg_file_write
    'lo_import', 'lo_export', 'lo_get', 'lo_put', 'lo_open', 'lo_create', 'lo_creat', 'lo_unlink', 'lo_from_bytea',
    'loread', 'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_lseek', 'lo_lseek64', 'lo_tell', 'lo_tell64', 'lo_close',
  ].map((f) => [f, 'it reaches server files or large objects'] as const),
  // C4: channels between sessions
  ...['pg_notify', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
    'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
    'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all', 'pg_listening_channels',
  ].map((f) => [f, 'it is a channel between sessions'] as const),
  // B6: other sessions' statement text
  ...['current_query', 'pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_prepared_statement', 'pg_cursor',
    'pg_stat_statements', 'pg_stat_statements_info', 'pg_stat_statements_reset',
  ].map((f) => [f, 'it shows statement text that can carry other users\' filters'] as const),
  // Session control
  ...['pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_switch_wal',
    'pg_promote', 'pg_log_backend_memory_contexts',
    'pg_backup_start', 'pg_backup_stop', // 15+
    'pg_start_backup', 'pg_stop_backup', // 14 (renamed pg_backup_start/stop in 15)
    'pg_rotate_logfile_old', // 13–16
    'pg_create_restore_point', 'pg_log_standby_snapshot', 'pg_wal_replay_pause', 'pg_wal_replay_resume',
  ].map((f) => [f, 'it acts on the server or on other sessions'] as const),
]);

/**
 * Settings a statement may change through SET or set_config: presentation and
 * timeouts only. Never standard_conforming_strings: pgveil's parser assumes it
 * is on, and upstream must lex statements exactly as pgveil did.
 */
export const settableParameters: ReadonlySet<string> = new Set([
  'application_name', 'client_encoding', 'datestyle', 'timezone', 'extra_float_digits', 'intervalstyle',
  'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'bytea_output', 'search_path',
  'lc_monetary', 'lc_numeric', 'lc_time', 'geqo', 'jit', 'client_min_messages', 'default_transaction_read_only',
  'default_transaction_isolation', 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable',
  'work_mem', 'enable_seqscan', 'enable_indexscan', 'enable_bitmapscan', 'enable_hashjoin', 'enable_mergejoin',
  'enable_nestloop', 'random_page_cost', 'max_parallel_workers_per_gather',
  'xmloption', 'default_text_search_config', 'timezone_abbreviations', 'cursor_tuple_fraction',
]);

/**
 * System relations refused outright: they show raw values, row counts or
 * other sessions' text (B5, B6, C4). Besides this list, every pg_catalog
 * relation whose name starts with pg_stat is refused (statistics views),
 * except the few in `harmlessStatViews`.
 */
export const refusedSystemRelations: ReadonlyMap<string, string> = new Map([
  ...['pg_statistic', 'pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data', 'pg_stat_user_tables',
    'pg_stat_all_tables', 'pg_stat_xact_user_tables', 'pg_stat_xact_all_tables', 'pg_statio_user_tables',
    'pg_statio_all_tables',
  ].map((r) => [r, 'it shows statistics of protected tables'] as const),
  ...['pg_stat_activity', 'pg_prepared_statements', 'pg_cursors', 'pg_stat_statements', 'pg_stat_statements_info'].map(
    (r) => [r, 'it shows statement text that can carry other users\' filters'] as const),
  ['pg_sequences', 'sequence values count rows of every org'],
  ...['pg_locks', 'pg_largeobject', 'pg_largeobject_metadata', 'pg_authid', 'pg_user_mappings', 'pg_hba_file_rules',
    'pg_file_settings', 'pg_shadow'].map((r) => [r, 'it is not needed by clients and can reach other sessions or secrets'] as const),
]);

/**
 * pgveil decodes and re-encodes statement text as UTF-8; in client encodings
 * such as SJIS or BIG5 a backslash byte can hide inside a character, so
 * upstream would lex the bytes differently from pgveil. Only UTF8 (and
 * SQL_ASCII, no conversion) is allowed; upstream always runs in UTF8.
 */
export function isUtf8(name: string): boolean {
  // SQL_ASCII means "no conversion": the bytes reach the UTF8 server as sent, as pgveil read them.
  return /^(utf-?8|unicode|sql_ascii)$/i.test(name.trim());
}

/** pg_stat* relations that show no table data or counts. */
export const harmlessStatViews: ReadonlySet<string> = new Set(['pg_statistic_ext', 'pg_stat_ssl', 'pg_stat_gssapi']);

/**
 * Cluster-wide statistics (B5): counters of the whole server with no
 * per-table, per-row or per-session data (buffers written, checkpoints, WAL
 * volume, archiving, SLRU caches, recovery prefetching, I/O by backend type). They are allowed, and
 * so are the pg_stat_get_* functions they are built on (view-functions.ts).
 * Not here: pg_stat_database (row counts of the database), pg_stat_replication
 * and pg_stat_wal_receiver (other sessions' addresses and connection strings).
 */
export const clusterWideStatViews: ReadonlySet<string> = new Set([
  'pg_stat_bgwriter', 'pg_stat_archiver', 'pg_stat_wal', 'pg_stat_slru',
  'pg_stat_recovery_prefetch', // 15+
  'pg_stat_io', // 16+
  'pg_stat_checkpointer', // 17+
]);

/** pg_stat_get_* functions that carry no statistics at all. */
export const harmlessStatFunctions: ReadonlySet<string> = new Set(['pg_stat_get_snapshot_timestamp']);

/** Why a pg_catalog / information_schema relation is refused, or undefined when it may be read. */
export function systemRelationRefusal(name: string): string | undefined {
  return refusedSystemRelations.get(name)
    ?? (name.startsWith('pg_stat') && !harmlessStatViews.has(name) && !clusterWideStatViews.has(name)
      ? 'it shows per-table, per-row or per-session statistics' : undefined);
}

/** Relation-size functions: answered NULL for protected relations (sizes grow with every org's rows, B5). */
export const sizeFunctions: ReadonlySet<string> = new Set(['pg_relation_size', 'pg_table_size', 'pg_total_relation_size', 'pg_indexes_size']);

/**
 * Threats A6/A9: names of the refused families (see refusedFamily) that are
 * allowed on purpose, each with the rule that allows it. A function of a
 * family that is in neither list fails test/threats/a-version-functions.test.ts
 * on the major that has it, so a new major's function cannot slip through.
 */
export const allowedFamilyFunctions: ReadonlyMap<string, string> = new Map([
  ['pg_filenode_relation', 'maps a filenode number to a relation oid; reads no file'],
  ['pg_backup_start_time', 'PostgreSQL 14 only: the start time of a running exclusive backup; no data, starts nothing'],
]);

/**
 * The families whose members are refused (files, programs, large objects,
 * SQL from strings, channels, sequences, server control): a pg_proc name
 * matching one must be in refusedFunctions, under the pg_stat_get_/pg_stat_reset
 * prefix rule, or in allowedFamilyFunctions.
 */
export const refusedFamily = new RegExp([
  '^pg_(read|ls_|stat_file|file|logdir|rotate|start_backup|stop_backup|backup|promote|reload|terminate|cancel|switch_wal|log_|create_restore|wal_replay)',
  '^lo_', '^lo(read|write)$', '_to_xml', '^ts_stat$', '^ts_rewrite$', '^dblink',
  '^pg_(try_)?advisory', '^pg_notify$', '^pg_listening', '^pg_sequence', '^(nextval|currval|setval|lastval)$',
].join('|'));
