"""No store query scans a history table: EXPLAIN QUERY PLAN of every SQL
statement in runtime/store/*.c, on a database the real binary migrated.

A control plane runs for months, so a request path that reads every run,
event, frame, node or attempt ever stored gets slower with each one (the
hello snapshot once did: 38 ms at 200k runs, bench/RESULTS.md). The
statements are read from the C sources (every string literal, or run of
literals, that starts a SELECT/INSERT/UPDATE/DELETE), so a new query is
checked without anyone listing it here. A scan in rowid order that stops at
the first row (ORDER BY rowid DESC LIMIT 1) is one index step and allowed.
"""
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


def store_statements():
    out = []
    for path in sorted(glob.glob(STORE_SOURCES)):
        src = open(path, encoding="utf-8").read()
        for run in re.finditer(r'(?:"(?:[^"\\\n]|\\.)*"\s*)+', src):
            sql = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', run.group(0))).replace('\\"', '"')
            if re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", sql) and len(sql) > 20:
                out.append((os.path.basename(path), sql))
    return out


def partial_indexes(db):
    return {name for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            if sql and " WHERE " in sql.upper()}


def full_scans(db, sql):
    """The plan lines that read a whole history table. SEARCH (an index
    lookup) is fine. SCAN walks the table or an index from one end, which is
    fine only when it stops early or walks a partial index:
      - SCAN t USING [COVERING] INDEX i: i is partial (it holds only the
        rows asked for), or the statement has a LIMIT (listRuns: the newest
        N by the index order);
      - SCAN t: the statement reads the newest row by rowid
        (ORDER BY rowid DESC LIMIT 1), one step down the rowid tree."""
    nums = [int(x) for x in re.findall(r"\?(\d+)", sql)]
    n = max(nums) if nums else sql.count("?")
    plan = db.execute("EXPLAIN QUERY PLAN " + sql, (None,) * n).fetchall()
    partial = partial_indexes(db)
    bad = []
    for row in plan:
        detail = row[3]
        m = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if not m or m.group(1) not in HISTORY_TABLES:
            continue
        if m.group(2):
            if m.group(2) in partial or re.search(r"\bLIMIT\b", sql):
                continue
        elif re.search(r"ORDER BY rowid DESC LIMIT 1\b", sql):
            continue
        bad.append(detail)
    return bad


class QueryPlans(harness.ServerTestCase):
    def test_no_store_query_scans_a_history_table(self):
        self.server.stop()            # a migrated database, nothing writing to it
        db = sqlite3.connect("file:%s?mode=ro" % self.server.db_path, uri=True)
        try:
            statements = store_statements()
            # the extraction must find the store's queries, or this test
            # would pass by checking nothing
            self.assertGreater(len(statements), 30)
            self.assertTrue(any("FROM runs" in s for _, s in statements))
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
        finally:
            db.close()
            self.server.start()       # the class tears down a running server


if __name__ == "__main__":
    harness.main()
