/*
 * runtime/store/store_migrations.c — the schema, as an append-only list of SQL.
 *
 * store.c applies every entry at or beyond the database's user_version, each
 * in its own transaction. To change the schema, append one string; never
 * edit one that has shipped, since databases out there already ran it.
 */
#include "store_migrations.h"

const char *const anvil_store_migrations[] = {
    /* 1: issued API tokens (only their sha256 is kept) and revocations,
     * which also cover token ids that live in the config file. */
    "CREATE TABLE tokens("
    "  token_id TEXT PRIMARY KEY,"
    "  token_sha256 TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  scopes_json TEXT NOT NULL,"
    "  user_id TEXT,"
    "  created_at_ms INTEGER NOT NULL,"
    "  expires_at_ms INTEGER,"
    "  revoked_at_ms INTEGER);"
    "CREATE TABLE token_revocations("
    "  token_id TEXT PRIMARY KEY,"
    "  revoked_at_ms INTEGER NOT NULL);",

    /* 2: durable runs. A run's node states, attempts, output rows,
     * approvals, signals, frames (node tree snapshots) and its event log
     * (per-run seq) all live here, so a restart resumes exactly where an
     * acknowledged state change left off. */
    "CREATE TABLE runs("
    "  run_id TEXT PRIMARY KEY,"
    "  workflow TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  input_json TEXT NOT NULL,"
    "  options_json TEXT NOT NULL,"
    "  owner_id TEXT,"
    "  triggered_by TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  scopes_json TEXT NOT NULL,"
    "  token_id TEXT,"
    "  idempotency_key TEXT,"
    "  error TEXT,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  frame_no INTEGER NOT NULL DEFAULT 0,"
    "  created_at_ms INTEGER NOT NULL,"
    "  updated_at_ms INTEGER NOT NULL,"
    "  finished_at_ms INTEGER);"
    "CREATE UNIQUE INDEX runs_idempotency ON runs(workflow, idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE INDEX runs_newest ON runs(created_at_ms DESC);"
    "CREATE INDEX runs_status_newest ON runs(status, created_at_ms DESC);"
    "CREATE TABLE nodes("
    "  run_id TEXT NOT NULL,"
    "  node_id TEXT NOT NULL,"
    "  iteration INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  started_at_ms INTEGER,"
    "  finished_at_ms INTEGER,"
    "  error TEXT,"
    "  PRIMARY KEY (run_id, node_id, iteration));"
    "CREATE TABLE attempts("
    "  run_id TEXT NOT NULL,"
    "  node_id TEXT NOT NULL,"
    "  iteration INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  started_at_ms INTEGER NOT NULL,"
    "  finished_at_ms INTEGER,"
    "  exit_code INTEGER,"
    "  error TEXT,"
    "  stdout TEXT,"
    "  stderr TEXT,"
    "  PRIMARY KEY (run_id, node_id, iteration, attempt));"
    "CREATE TABLE outputs("
    "  run_id TEXT NOT NULL,"
    "  node_id TEXT NOT NULL,"
    "  iteration INTEGER NOT NULL,"
    "  row_json TEXT NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (run_id, node_id, iteration));"
    "CREATE TABLE approvals("
    "  run_id TEXT NOT NULL,"
    "  node_id TEXT NOT NULL,"
    "  iteration INTEGER NOT NULL,"
    "  workflow TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  requested_at_ms INTEGER NOT NULL,"
    "  decided_at_ms INTEGER,"
    "  decided_by TEXT,"
    "  value_json TEXT,"
    "  note TEXT,"
    "  PRIMARY KEY (run_id, node_id, iteration));"
    "CREATE INDEX approvals_pending ON approvals(status, requested_at_ms);"
    "CREATE TABLE signals("
    "  run_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  signal_name TEXT,"
    "  correlation_id TEXT NOT NULL,"
    "  payload_json TEXT,"
    "  received_at_ms INTEGER NOT NULL,"
    "  received_by TEXT,"
    "  consumed_by TEXT,"
    "  PRIMARY KEY (run_id, seq));"
    "CREATE TABLE frames("
    "  run_id TEXT NOT NULL,"
    "  frame_no INTEGER NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  tree_json TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, frame_no));"
    "CREATE TABLE events("
    "  run_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  payload_json TEXT NOT NULL,"
    "  state_version INTEGER NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (run_id, seq));"
    "CREATE TABLE hijack_sessions("
    "  session_id TEXT PRIMARY KEY,"
    "  run_id TEXT NOT NULL,"
    "  user_id TEXT,"
    "  role TEXT NOT NULL,"
    "  token_id TEXT,"
    "  options_json TEXT,"
    "  created_at_ms INTEGER NOT NULL);",

    /* 3: cron schedules (runtime/cron.h patterns, UTC). Rows named
     * gateway:<workflow> come from the config's `schedule`; next_run_at_ms
     * is advanced before a fired run is launched, so a poll never fires a
     * row twice. */
    "CREATE TABLE crons("
    "  cron_id TEXT PRIMARY KEY,"
    "  workflow TEXT NOT NULL,"
    "  pattern TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  next_run_at_ms INTEGER,"
    "  last_run_at_ms INTEGER,"
    "  created_at_ms INTEGER NOT NULL,"
    "  updated_at_ms INTEGER NOT NULL);"
    "CREATE INDEX crons_due ON crons(enabled, next_run_at_ms);",

    /* 4: the runs that have not ended, without reading every run ever
     * stored (the WebSocket hello and recovery ask for them). A partial
     * index holds only those rows; its WHERE must stay the exact text of
     * anvil_store_runs_unfinished's, or SQLite will not use it. */
    ("CREATE INDEX runs_unfinished ON runs(created_at_ms)"
     " WHERE status NOT IN ('finished', 'failed', 'cancelled');"),

    /* 5: time travel (docs/time-travel.md). The run's current workspace
     * commit and whether a rewind holds it until resumeRun, each attempt's commit and the seq of its node.started, the
     * event seq and workspace commit of
     * each frame, and the rewind audit trail: a row is written in_progress
     * before a rewind changes anything and settled in the rewind's own
     * transaction, so a leftover in_progress row means the database is as
     * before the rewind. */
    "ALTER TABLE runs ADD COLUMN workspace_head TEXT;"
    "ALTER TABLE runs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN commit_id TEXT;"
    "ALTER TABLE attempts ADD COLUMN started_seq INTEGER;"
    "ALTER TABLE frames ADD COLUMN seq INTEGER;"
    "ALTER TABLE frames ADD COLUMN workspace_ref TEXT;"
    "CREATE TABLE rewind_audit("
    "  audit_id INTEGER PRIMARY KEY,"
    "  run_id TEXT NOT NULL,"
    "  caller TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  from_frame_no INTEGER,"
    "  to_frame_no INTEGER NOT NULL,"
    "  result TEXT NOT NULL,"
    "  code TEXT,"
    "  message TEXT,"
    "  workspace_before TEXT,"
    "  workspace_after TEXT,"
    "  started_at_ms INTEGER NOT NULL,"
    "  finished_at_ms INTEGER);"
    "CREATE INDEX rewind_audit_quota ON rewind_audit(run_id, caller, started_at_ms);"
    "CREATE INDEX rewind_audit_open ON rewind_audit(audit_id) WHERE result = 'in_progress';",

    /* 6: what the upstream client sends and shows (docs/runs.md). The
     * launch's self-reported provenance (options.startedBy, normalised by
     * handlers/started_by.c; NULL when none), which is immutable like the
     * run's input; and an index for listRuns' workflow filter, so a page of
     * one workflow's newest runs is read in index order, not filtered out
     * of every run. */
    "ALTER TABLE runs ADD COLUMN started_by_json TEXT;"
    "CREATE INDEX runs_workflow_newest ON runs(workflow, created_at_ms DESC);",

    /* 7: idempotent webhook deliveries (docs/webhooks.md#redeliveries).
     * webhook_deliveries keeps the first answer to each signed delivery
     * that carried a delivery id, for the retention window; the age index
     * lets the pruning delete the oldest rows without reading the rest.
     * signals.delivery_key marks a signal sent for a delivery, so a
     * repeated delivery finds the signals its first attempt recorded (and
     * records none again) even when its answer was never written; runs
     * started by a delivery carry the same key as their idempotency_key. */
    "CREATE TABLE webhook_deliveries("
    "  workflow TEXT NOT NULL,"
    "  delivery_id TEXT NOT NULL,"
    "  received_at_ms INTEGER NOT NULL,"
    "  body_sha256 TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  reply_json TEXT NOT NULL,"
    "  PRIMARY KEY (workflow, delivery_id));"
    "CREATE INDEX webhook_deliveries_age ON webhook_deliveries(received_at_ms);"
    "ALTER TABLE signals ADD COLUMN delivery_key TEXT;"
    "CREATE UNIQUE INDEX signals_delivery ON signals(delivery_key, run_id)"
    "  WHERE delivery_key IS NOT NULL;",

    /* 8: removing runs (deleteRun; docs/runs.md#deleterun). store_meta
     * keeps the state version a removed run's events carried, so the
     * version read at startup (the newest event's) never goes back when
     * the newest events were removed. workspace_removals holds the runs
     * whose rows are gone but whose workspace directory and repository
     * may still be on disk: written in the deleting transaction and
     * cleared once the files are gone, so a crash in between leaves a row
     * that the next start removes, not an orphan nobody knows of.
     * hijack_sessions gets the run index its deletion needs. */
    "CREATE TABLE store_meta("
    "  key TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL);"
    "CREATE TABLE workspace_removals("
    "  run_id TEXT PRIMARY KEY,"
    "  queued_at_ms INTEGER NOT NULL);"
    "CREATE INDEX hijack_sessions_run ON hijack_sessions(run_id);",

    /* 9: the retention policy (docs/config.md#retention) asks, per
     * workflow, for its ended runs oldest first (by age) or newest first
     * (by count). A partial index holds only ended runs, so neither walks
     * the runs still going; its WHERE must stay the exact text of the
     * queries' in store_retention.c, or SQLite will not use it. */
    ("CREATE INDEX runs_ended ON runs(workflow, finished_at_ms)"
     " WHERE status IN ('finished', 'failed', 'cancelled');"),

    /* 10: listRuns filtered by status and workflow together. With only
     * runs_workflow_newest the status was checked row by row, so a status
     * that few of the workflow's runs have walked every run of the
     * workflow (271 ms at 1M runs, bench/RESULTS.md); this index reads
     * just the page asked for. */
    "CREATE INDEX runs_workflow_status_newest ON runs(workflow, status, created_at_ms DESC);",

    /* 11: events stored without the runId their row's key holds
     * (store_compact.h): 1 marks such a row; older rows are NULL, as
     * recorded. Adding a column rewrites nothing. */
    "ALTER TABLE events ADD COLUMN compact INTEGER;",
};

const size_t anvil_store_n_migrations =
    sizeof anvil_store_migrations / sizeof anvil_store_migrations[0];
