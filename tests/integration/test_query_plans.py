"""No store query scans a history table: EXPLAIN QUERY PLAN of every SQL
statement in runtime/store/*.c, on a database the real binary migrated.

A control plane runs for months, so a request path that reads every run,
event, frame, node or attempt ever stored gets slower with each one (the
hello snapshot once did: 38 ms at 200k runs, bench/RESULTS.md). The
statements are read from the C sources (every string literal, or run of
literals and the file's own string macros such as RUN_COLUMNS, that starts
a SELECT/INSERT/UPDATE/DELETE), so a new query is checked without anyone
listing it here. A scan in rowid order that stops at the first row
(ORDER BY rowid DESC LIMIT 1) is one index step and allowed.

A SEARCH is not enough either: listRuns filtered by status and workflow
once read runs_workflow_newest (workflow=?) and checked the status row by
row, so a status few of the workflow's runs had walked all of them (271 ms
at 1M runs). So a plan that walks a history table's index must also check
every column the WHERE names, unless its lookup pins one run (run_id) or
one row (a unique key), or the pair is listed in BOUNDED_WALKS with why
the rows it walks do not grow with history.
"""
import contextlib
import glob
import os
import re
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HISTORY_TABLES = ("runs", "events", "frames", "nodes", "attempts", "approvals", "signals", "outputs",
                  "webhook_deliveries")
STORE_SOURCES = os.path.join(harness.SOURCE_DIR, "runtime", "store", "*.c")


LITERAL = r'"(?:[^"\\\n]|\\.)*"'


def string_macros(src):
    """#define NAME "..." "..." (continued with backslashes): NAME -> text."""
    out = {}
    for m in re.finditer(r'^#define (\w+)[ \t]*((?:\\\n)?(?:[ \t]*%s[ \t]*(?:\\\n)?)+)$' % LITERAL,
                         src, re.M):
        out[m.group(1)] = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(2)))
    return out


def store_statements():
    out = []
    for path in sorted(glob.glob(STORE_SOURCES)):
        src = open(path, encoding="utf-8").read()
        macros = string_macros(src)
        piece = LITERAL + ("|\\b(?:%s)\\b" % "|".join(macros) if macros else "")
        for run in re.finditer(r'(?:(?:%s)\s*)+' % piece, src):
            parts = re.findall(piece, run.group(0))
            if not any(p.startswith('"') for p in parts):
                continue
            sql = "".join(macros[p] if p in macros else p[1:-1] for p in parts).replace('\\"', '"')
            if re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", sql) and len(sql) > 20:
                out.append((os.path.basename(path), sql))
    return out


def partial_indexes(db):
    return {name for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            if sql and " WHERE " in sql.upper()}


# (index, column): an index walk that checks the column row by row, and why
# the rows it walks do not grow with history.
BOUNDED_WALKS = {
    # listApprovals: status = 'requested' holds only the approvals waiting
    # now (a decision or a cancel changes the status), never the decided
    # history; the run and workflow filters are checked among those.
    ("approvals_pending", "run_id"): "only pending approvals",
    ("approvals_pending", "workflow"): "only pending approvals",
}


def explain(db, sql):
    nums = [int(x) for x in re.findall(r"\?(\d+)", sql)]
    n = max(nums) if nums else sql.count("?")
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, (None,) * n)]


def table_aliases(sql):
    """alias -> table for `FROM t a` / `JOIN t AS a`; every table names itself."""
    out = {}
    for m in re.finditer(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", sql, re.I):
        out[m.group(1)] = m.group(1)
        if m.group(2) and m.group(2).upper() not in ("WHERE", "SET", "JOIN", "LEFT", "ON", "ORDER",
                                                     "GROUP", "LIMIT", "INDEXED", "NOT", "VALUES"):
            out[m.group(2)] = m.group(1)
    return out


def unchecked_terms(db, sql):
    """The plan lines that walk a history table through an index and leave
    a WHERE column to be checked row by row, as "detail: column". Checked
    means: a constraint of the lookup (the plan's parentheses), or implied
    by the index's own WHERE (a partial index). Fine without: a lookup that
    pins one run (run_id=?) or one row (every column of a unique index),
    and the pairs in BOUNDED_WALKS."""
    aliases = table_aliases(sql)
    where = " ".join(re.findall(r"\bWHERE\b(.*?)(?=\bORDER BY\b|\bGROUP BY\b|\bLIMIT\b|\)\s*$|$)",
                                sql, re.I | re.S))
    bad = []
    for detail in explain(db, sql):
        m = re.match(r"(?:SEARCH|SCAN) (\w+) USING (?:COVERING )?INDEX (\w+)(?: \((.*)\))?", detail)
        if not m or aliases.get(m.group(1), m.group(1)) not in HISTORY_TABLES:
            continue
        table, alias, index = aliases.get(m.group(1), m.group(1)), m.group(1), m.group(2)
        constrained = set(re.findall(r"(\w+)(?:=|>|<| IN\b)", m.group(3) or ""))
        equal = set(re.findall(r"(\w+)=", m.group(3) or ""))
        info = {r[1]: r for r in db.execute("PRAGMA index_list(%s)" % table)}
        cols = [r[2] for r in db.execute("PRAGMA index_info(%s)" % index)]
        if "run_id" in equal or (info[index][2] and set(cols) <= equal):
            continue
        index_sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0] or ""
        partial = index_sql.split(" WHERE ", 1)[1] if " WHERE " in index_sql else ""
        names = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
        for col in names:
            # col or alias.col, not another join table's other.col
            named = re.search(r"(?<![\w.])(?:%s\.)?%s\b" % (re.escape(alias), re.escape(col)), where)
            if not named or col in constrained or re.search(r"\b%s\b" % col, partial):
                continue
            if (index, col) not in BOUNDED_WALKS:
                bad.append("%s: %s" % (detail, col))
    return bad


def full_scans(db, sql):
    """The plan lines that read a whole history table. SEARCH (an index
    lookup) is fine. SCAN walks the table or an index from one end, which is
    fine only when it stops early or walks a partial index:
      - SCAN t USING [COVERING] INDEX i: i is partial (it holds only the
        rows asked for), or the statement has a LIMIT (listRuns: the newest
        N by the index order);
      - SCAN t: the statement reads the newest row by rowid
        (ORDER BY rowid DESC LIMIT 1), one step down the rowid tree."""
    partial = partial_indexes(db)
    aliases = table_aliases(sql)
    bad = []
    for detail in explain(db, sql):
        m = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if not m or aliases.get(m.group(1), m.group(1)) not in HISTORY_TABLES:
            continue
        if m.group(2):
            if m.group(2) in partial or re.search(r"\bLIMIT\b", sql):
                continue
        elif re.search(r"ORDER BY rowid DESC LIMIT 1\b", sql):
            continue
        bad.append(detail)
    return bad


class QueryPlans(harness.ServerTestCase):
    @contextlib.contextmanager
    def migrated_db(self):
        """The server's database, read-only, with the server stopped (so
        nothing writes to it); the server is started again after."""
        self.server.stop()
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True)
        try:
            yield db
        finally:
            db.close()
            self.server.start()       # the class tears down a running server

    def test_no_store_query_scans_a_history_table(self):
        with self.migrated_db() as db:
            statements = store_statements()
            # the extraction must find the store's queries, or this test
            # would pass by checking nothing; statements that use a
            # column-list macro (RUN_COLUMNS) are found too
            self.assertGreater(len(statements), 30)
            self.assertTrue(any("FROM runs" in s for _, s in statements))
            self.assertTrue(any(s.startswith("SELECT run_id, workflow, status, input_json") and
                                s.endswith("FROM runs WHERE run_id = ?1") for _, s in statements))
            # and the check must see a scan when there is one, bare or
            # through a whole index
            self.assertEqual(full_scans(db, "SELECT run_id FROM runs WHERE input_json = ?1"),
                             ["SCAN runs"])
            self.assertEqual(full_scans(db, "SELECT run_id FROM runs WHERE status != ?1"
                                            " ORDER BY created_at_ms DESC"),
                             ["SCAN runs USING INDEX runs_newest"])
            problems = []
            for name, sql in statements:
                for detail in full_scans(db, sql):
                    problems.append("%s: %s\n    %s" % (name, detail, sql))
            self.assertEqual(problems, [], "\n".join(problems))

    def test_no_index_walk_leaves_a_where_term_unchecked(self):
        with self.migrated_db() as db:
            # the check must see it: a workflow's runs walked for a column
            # the index does not hold, or for one it holds but after the
            # ordering column (the listRuns case before migration 10)
            self.assertEqual(unchecked_terms(db, "SELECT run_id FROM runs WHERE workflow = ?1"
                                                 " AND owner_id = ?2 ORDER BY created_at_ms DESC LIMIT 20"),
                             ["SEARCH runs USING INDEX runs_workflow_newest (workflow=?): owner_id"])
            self.assertEqual(unchecked_terms(db, "SELECT run_id FROM runs INDEXED BY runs_workflow_newest"
                                                 " WHERE status = ?1 AND workflow = ?2"
                                                 " ORDER BY created_at_ms DESC LIMIT 20"),
                             ["SEARCH runs USING INDEX runs_workflow_newest (workflow=?): status"])
            # and let these be: one run's rows, one row by a unique key
            self.assertEqual(unchecked_terms(db, "SELECT seq FROM signals WHERE run_id = ?1"
                                                 " AND consumed_by IS NULL"), [])
            self.assertEqual(unchecked_terms(db, "SELECT run_id FROM runs WHERE workflow = ?1"
                                                 " AND idempotency_key = ?2 AND owner_id = ?3"), [])
            problems = []
            for name, sql in store_statements():
                for detail in unchecked_terms(db, sql):
                    problems.append("%s: %s\n    %s" % (name, detail, sql))
            self.assertEqual(problems, [], "\n".join(problems))

    def test_list_runs_by_status_and_workflow_reads_its_own_index(self):
        """listRuns with both filters: one SEARCH on both columns (migration
        10), so a status none of the workflow's runs has costs one index
        step, not a walk of the workflow's runs (bench/RESULTS.md)."""
        with self.migrated_db() as db:
            both = [sql for name, sql in store_statements()
                    if name == "store_runs.c" and "FROM runs WHERE status = ?3 AND workflow = ?4" in sql]
            self.assertEqual(len(both), 1, "anvil_store_run_summaries' status-and-workflow query")
            self.assertEqual(explain(db, both[0]),
                             ["SEARCH runs USING INDEX runs_workflow_status_newest (workflow=? AND status=?)",
                              # ties of created_at_ms put in rowid order; LIMIT stops the walk
                              "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"])


if __name__ == "__main__":
    harness.main()
