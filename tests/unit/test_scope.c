/*
 * tests/unit/test_scope.c — the grant rules of runtime/contract/scope.c.
 *
 * The table is written out by hand to match the gateway's scopes.ts (see
 * /work/shared/seeds/README.md), so these tests do not depend on the
 * generator; a second, deliberately cyclic table checks the walk ends.
 */
#include <stdbool.h>
#include <stddef.h>

#include "scope.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const run_write_implies[] = { "run:read" };
static const char *const run_admin_implies[] = { "run:write" };
static const char *const cron_write_implies[] = { "cron:read" };

static const anvil_scope_def scopes[] = {
    { "run:read", "Read runs", NULL, 0 },
    { "run:write", "Launch and control runs", run_write_implies, 1 },
    { "run:admin", "Administer runs", run_admin_implies, 1 },
    { "approval:submit", "Decide approvals", NULL, 0 },
    { "signal:submit", "Send signals", NULL, 0 },
    { "cron:read", "Read cron", NULL, 0 },
    { "cron:write", "Change cron", cron_write_implies, 1 },
    { "observability:read", "Read devtools", NULL, 0 },
};

static const char *const legacy_read[] = { "run:read", "cron:read", "observability:read" };
static const char *const legacy_execute[] = {
    "run:read", "run:write", "signal:submit", "cron:read", "cron:write",
};
static const char *const legacy_approve[] = {
    "run:read", "run:write", "signal:submit", "cron:read", "cron:write", "approval:submit",
};
static const char *const legacy_admin[] = {
    "run:read", "run:write", "run:admin", "approval:submit",
    "signal:submit", "cron:read", "cron:write", "observability:read",
};

static const anvil_legacy_grant legacy[] = {
    { "read", legacy_read, N(legacy_read) },
    { "execute", legacy_execute, N(legacy_execute) },
    { "approve", legacy_approve, N(legacy_approve) },
    { "admin", legacy_admin, N(legacy_admin) },
};

static const anvil_scope_table table = { scopes, N(scopes), legacy, N(legacy) };

/* One grant, a required scope, a method called as itself. */
static bool allows1(const char *grant, const char *required, const char *method)
{
    char *g[] = { (char *)grant };
    return anvil_scope_allows(&table, g, 1, required, method, method);
}

static void test_star(void)
{
    CHECK(allows1("*", "run:admin", "config.set"));
    CHECK(allows1("*", NULL, "anything"));
    CHECK(allows1(" * ", "run:admin", "x"));
    CHECK(!allows1("**", "run:admin", "x"));
    CHECK(!allows1("", "run:read", "health"));
    char *none[] = { NULL };
    CHECK(!anvil_scope_allows(&table, none, 0, "run:read", "health", "health"));
    CHECK(!anvil_scope_allows(&table, NULL, 0, "run:read", "health", "health"));
    CHECK(!anvil_scope_allows(&table, none, 1, "run:read", "health", "health"));
}

static void test_typed_and_implied(void)
{
    CHECK(allows1("run:read", "run:read", "runs.list"));
    CHECK(allows1("run:write", "run:read", "runs.list"));
    CHECK(allows1("run:admin", "run:write", "launchRun"));
    /* Two steps: run:admin -> run:write -> run:read. */
    CHECK(allows1("run:admin", "run:read", "runs.list"));
    CHECK(allows1("cron:write", "cron:read", "cron.list"));

    /* Implication only goes down. */
    CHECK(!allows1("run:read", "run:write", "launchRun"));
    CHECK(!allows1("run:write", "run:admin", "config.set"));
    CHECK(!allows1("cron:read", "cron:write", "cron.add"));
    /* Unrelated families. */
    CHECK(!allows1("run:admin", "cron:read", "cron.list"));
    CHECK(!allows1("run:admin", "approval:submit", "submitApproval"));
    CHECK(!allows1("cron:write", "run:read", "runs.list"));
    CHECK(!allows1("observability:read", "run:read", "runs.list"));
    /* Not a prefix match, and case matters. */
    CHECK(!allows1("run:rea", "run:read", "runs.list"));
    CHECK(!allows1("run:reader", "run:read", "runs.list"));
    CHECK(!allows1("RUN:READ", "run:read", "runs.list"));
    /* A required scope outside the table still matches itself exactly. */
    CHECK(allows1("custom:thing", "custom:thing", "m"));
    CHECK(!allows1("run:admin", "custom:thing", "m"));
}

static void test_legacy(void)
{
    CHECK(allows1("read", "run:read", "runs.list"));
    CHECK(allows1("read", "cron:read", "cron.list"));
    CHECK(allows1("read", "observability:read", "getDevToolsSnapshot"));
    CHECK(!allows1("read", "run:write", "launchRun"));
    CHECK(!allows1("read", "signal:submit", "submitSignal"));

    CHECK(allows1("execute", "run:write", "launchRun"));
    CHECK(allows1("execute", "signal:submit", "submitSignal"));
    CHECK(allows1("execute", "cron:write", "cron.add"));
    CHECK(!allows1("execute", "approval:submit", "submitApproval"));
    CHECK(!allows1("execute", "run:admin", "config.set"));
    CHECK(!allows1("execute", "observability:read", "getDevToolsSnapshot"));

    CHECK(allows1("approve", "approval:submit", "submitApproval"));
    CHECK(allows1("approve", "run:write", "launchRun"));
    CHECK(!allows1("approve", "run:admin", "config.set"));

    for (size_t i = 0; i < N(scopes); i++)
        CHECK(allows1("admin", scopes[i].name, "m"));
    CHECK(!allows1("admin", "custom:thing", "m"));
    CHECK(!allows1("Execute", "run:write", "launchRun"));
    CHECK(allows1("\texecute ", "run:write", "launchRun"));
}

static void test_method_grants(void)
{
    char *launch[] = { "launchRun" };
    /* Called by its legacy alias: the canonical name in the grant counts. */
    CHECK(anvil_scope_allows(&table, launch, 1, "run:write", "runs.create", "launchRun"));
    CHECK(anvil_scope_allows(&table, launch, 1, "run:write", "launchRun", "launchRun"));
    CHECK(anvil_scope_allows(&table, launch, 1, "run:write", "launchRun", NULL));
    CHECK(!anvil_scope_allows(&table, launch, 1, "run:write", "runs.create", "runs.create"));
    CHECK(!anvil_scope_allows(&table, launch, 1, "run:write", "cancelRun", "cancelRun"));
    /* A grant of the alias grants the alias call too. */
    char *alias[] = { "runs.create" };
    CHECK(anvil_scope_allows(&table, alias, 1, "run:write", "runs.create", "launchRun"));
    /* Method grants work even when no scope is required. */
    CHECK(anvil_scope_allows(&table, launch, 1, NULL, "launchRun", "launchRun"));
    CHECK(!anvil_scope_allows(&table, launch, 1, NULL, NULL, NULL));

    /* "cron.*" covers methods called "cron.<x>", nothing else. */
    CHECK(allows1("cron.*", "cron:write", "cron.add"));
    CHECK(allows1("cron.*", NULL, "cron.list"));
    CHECK(allows1(" cron.* ", "cron:write", "cron.remove"));
    CHECK(!allows1("cron.*", "run:write", "runs.create"));
    CHECK(!allows1("cron.*", "cron:read", "cronRun"));
    CHECK(!allows1("cron.*", "cron:read", "cron"));
    CHECK(!allows1("runs.*", "run:write", "runsx.create"));
    CHECK(allows1("runs.*", "run:write", "runs.create"));
    /* Only the called name is matched against the prefix. */
    char *runs_star[] = { "runs.*" };
    CHECK(!anvil_scope_allows(&table, runs_star, 1, "run:write", "launchRun", "runs.create"));
    CHECK(anvil_scope_allows(&table, runs_star, 1, "run:write", "runs.create", "launchRun"));
    /* A bare "cron*" is not a wildcard. */
    CHECK(!allows1("cron*", "cron:write", "cron.add"));
    CHECK(!allows1("cron.*", "cron:write", NULL));
}

static void test_lists_and_whitespace(void)
{
    char *g[] = { "", "  ", "observability:read", " run:write\t" };
    CHECK(anvil_scope_allows(&table, g, N(g), "run:read", "runs.list", "runs.list"));
    CHECK(anvil_scope_allows(&table, g, N(g), "observability:read", "x", "x"));
    CHECK(!anvil_scope_allows(&table, g, N(g), "cron:read", "cron.list", "cron.list"));
    /* Only the first n_granted entries count. */
    CHECK(!anvil_scope_allows(&table, g, 3, "run:read", "runs.list", "runs.list"));
    char *m[] = { "run:read", "\nlaunchRun\r\n" };
    CHECK(anvil_scope_allows(&table, m, N(m), "run:write", "runs.create", "launchRun"));
    CHECK(!anvil_scope_allows(&table, m, N(m), "run:write", "cancelRun", "cancelRun"));
    /* NULL entries are skipped, not dereferenced. */
    char *holes[] = { NULL, "run:admin" };
    CHECK(anvil_scope_allows(&table, holes, N(holes), "run:read", "m", "m"));
}

static void test_no_table(void)
{
    char *g[] = { "run:read", "execute" };
    CHECK(anvil_scope_allows(NULL, g, N(g), "run:read", "m", "m"));
    CHECK(!anvil_scope_allows(NULL, g, N(g), "run:write", "m", "m"));
    CHECK(!anvil_scope_known(NULL, "run:read"));
}

/* a -> b -> c -> a, and d -> d, with e reachable only from c. */
static const char *const cyc_a[] = { "b" };
static const char *const cyc_b[] = { "c", "missing" };
static const char *const cyc_c[] = { "a", "e" };
static const char *const cyc_d[] = { "d" };
static const anvil_scope_def cyc_scopes[] = {
    { "a", "", cyc_a, 1 }, { "b", "", cyc_b, 2 }, { "c", "", cyc_c, 2 },
    { "d", "", cyc_d, 1 }, { "e", "", NULL, 0 },
};
static const char *const cyc_all[] = { "d", "a" };
static const anvil_legacy_grant cyc_legacy[] = { { "both", cyc_all, 2 } };
static const anvil_scope_table cyc = { cyc_scopes, N(cyc_scopes), cyc_legacy, 1 };

static void test_cycles(void)
{
    char *a[] = { "a" }, *d[] = { "d" }, *both[] = { "both" };
    CHECK(anvil_scope_allows(&cyc, a, 1, "c", "m", "m"));
    CHECK(anvil_scope_allows(&cyc, a, 1, "e", "m", "m"));
    CHECK(anvil_scope_allows(&cyc, a, 1, "a", "m", "m"));
    CHECK(!anvil_scope_allows(&cyc, a, 1, "d", "m", "m"));
    CHECK(!anvil_scope_allows(&cyc, a, 1, "zzz", "m", "m"));
    CHECK(anvil_scope_allows(&cyc, a, 1, "missing", "m", "m"));
    CHECK(!anvil_scope_allows(&cyc, d, 1, "a", "m", "m"));
    /* The legacy walk through "d" must not poison the later walk from "a". */
    CHECK(anvil_scope_allows(&cyc, both, 1, "e", "m", "m"));
    CHECK(!anvil_scope_allows(&cyc, both, 1, "zzz", "m", "m"));
}

static void test_known(void)
{
    for (size_t i = 0; i < N(scopes); i++)
        CHECK(anvil_scope_known(&table, scopes[i].name));
    CHECK(!anvil_scope_known(&table, "execute"));
    CHECK(!anvil_scope_known(&table, "*"));
    CHECK(!anvil_scope_known(&table, "run:rea"));
    CHECK(!anvil_scope_known(&table, "run:read "));
    CHECK(!anvil_scope_known(&table, ""));
    CHECK(!anvil_scope_known(&table, NULL));
}

int main(void)
{
    test_star();
    test_typed_and_implied();
    test_legacy();
    test_method_grants();
    test_lists_and_whitespace();
    test_no_table();
    test_cycles();
    test_known();
    UNIT_DONE();
}
