/*
 * runtime/store/store_tokens.c — issued API tokens and revocations in the store.
 *
 * Owns the SQL for the tokens and token_revocations tables. Only a token's
 * sha256 is ever stored, never the token. Lookup and the revocation check run
 * on every authenticated request, so they use cached statements. Revocations
 * are keyed by token id alone so that ids of tokens from the config file
 * (which have no tokens row) can be revoked too.
 */
#include "store.h"
#include "store_db.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char LOOKUP_SQL[] =
    "SELECT t.token_id, t.role, t.scopes_json, t.user_id, t.expires_at_ms,"
    "       COALESCE(t.revoked_at_ms, r.revoked_at_ms)"
    "  FROM tokens t LEFT JOIN token_revocations r ON r.token_id = t.token_id"
    " WHERE t.token_sha256 = ?1";

static char *scopes_to_json(const anvil_token_grant *g)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < g->n_scopes; i++) {
        cJSON *item = cJSON_CreateString(g->scopes[i]);
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *out = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return out;
}

static int scopes_from_json(const char *json, char ***out, size_t *n_out)
{
    cJSON *arr = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    char **v = calloc(n ? n : 1, sizeof *v);
    const cJSON *item;
    int rc = v ? 0 : -1;
    cJSON_ArrayForEach(item, arr) {
        if (rc != 0)
            break;
        if (!cJSON_IsString(item) || !(v[i++] = strdup(item->valuestring)))
            rc = -1;
    }
    cJSON_Delete(arr);
    if (rc != 0) {
        for (size_t j = 0; v && j < n; j++)
            free(v[j]);
        free(v);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

int anvil_store_token_insert(anvil_store *s, const anvil_token_grant *g,
                             const char *sha256_hex, int64_t created_at_ms,
                             char *err, size_t errlen)
{
    if (!g->token_id || !g->role || !sha256_hex)
        return anvil_store_fail(s, err, errlen, "token id, role and hash are required");
    char *scopes = scopes_to_json(g);
    if (!scopes)
        return anvil_store_fail(s, err, errlen, "out of memory");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
        "INSERT INTO tokens(token_id, token_sha256, role, scopes_json, user_id,"
        " created_at_ms, expires_at_ms, revoked_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, g->token_id);
        bind_text(st, 2, sha256_hex);
        bind_text(st, 3, g->role);
        bind_text(st, 4, scopes);
        bind_text(st, 5, g->user_id);
        sqlite3_bind_int64(st, 6, created_at_ms);
        if (g->has_expires_at)
            sqlite3_bind_int64(st, 7, g->expires_at_ms);
        if (g->has_revoked_at)
            sqlite3_bind_int64(st, 8, g->revoked_at_ms);
        rc = sqlite3_step(st);
    }
    cJSON_free(scopes);
    int ext = sqlite3_extended_errcode(s->db);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        anvil_store_revocations_invalidate(s);   /* the row may carry a revocation */
        return 0;
    }
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return anvil_store_fail(s, err, errlen, "a token with id \"%s\" already exists",
                                g->token_id);
    if (ext == SQLITE_CONSTRAINT_UNIQUE)
        return anvil_store_fail(s, err, errlen, "a token with that hash already exists");
    return anvil_store_fail(s, err, errlen, "storing token: %s", sqlite3_errmsg(s->db));
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

int anvil_store_token_lookup(void *ctx, const char *sha256_hex, anvil_token_grant *out)
{
    anvil_store *s = ctx;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = anvil_store_stmt(s, ANVIL_STMT_TOKEN_LOOKUP, LOOKUP_SQL);
    if (!st)
        return -1;
    bind_text(st, 1, sha256_hex);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        anvil_store_fail(s, NULL, 0, "token lookup: %s", sqlite3_errmsg(s->db));
        sqlite3_reset(st);
        return -1;
    }
    out->token_id = column_dup(st, 0);
    out->role = column_dup(st, 1);
    bool ok = out->token_id && out->role &&
              scopes_from_json((const char *)sqlite3_column_text(st, 2), &out->scopes,
                               &out->n_scopes) == 0;
    if (ok && sqlite3_column_type(st, 3) != SQLITE_NULL)
        ok = (out->user_id = column_dup(st, 3)) != NULL;
    if ((out->has_expires_at = sqlite3_column_type(st, 4) != SQLITE_NULL))
        out->expires_at_ms = sqlite3_column_int64(st, 4);
    if ((out->has_revoked_at = sqlite3_column_type(st, 5) != SQLITE_NULL))
        out->revoked_at_ms = sqlite3_column_int64(st, 5);
    sqlite3_reset(st);
    if (!ok) {
        anvil_token_grant_clear(out);
        anvil_store_fail(s, NULL, 0, "token lookup: bad row or out of memory");
        return -1;
    }
    return 1;
}

static const char REVOKED_ALL_SQL[] =
    "SELECT token_id, MIN(at) FROM ("
    "  SELECT token_id, revoked_at_ms AS at FROM token_revocations"
    "  UNION ALL"
    "  SELECT token_id, revoked_at_ms FROM tokens WHERE revoked_at_ms IS NOT NULL)"
    " GROUP BY token_id ORDER BY token_id";

/* PRAGMA data_version: changes when another connection commits. */
static int data_version(anvil_store *s, int64_t *out)
{
    sqlite3_stmt *st = anvil_store_stmt(s, ANVIL_STMT_DATA_VERSION, "PRAGMA data_version");
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : anvil_store_fail(s, NULL, 0, "data_version: %s", sqlite3_errmsg(s->db));
}

static int load_revocations(anvil_store *s)
{
    anvil_store_revocations_invalidate(s);
    sqlite3_stmt *st = anvil_store_stmt(s, ANVIL_STMT_REVOKED_ALL, REVOKED_ALL_SQL);
    if (!st)
        return -1;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->n_revoked == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct anvil_revocation *nr = realloc(s->revoked, ncap * sizeof *nr);
            if (!nr) {
                rc = SQLITE_NOMEM;
                break;
            }
            s->revoked = nr;
            cap = ncap;
        }
        const char *id = (const char *)sqlite3_column_text(st, 0);
        char *copy = strdup(id ? id : "");
        if (!copy) {
            rc = SQLITE_NOMEM;
            break;
        }
        s->revoked[s->n_revoked].token_id = copy;
        s->revoked[s->n_revoked].at_ms = sqlite3_column_int64(st, 1);
        s->n_revoked++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        anvil_store_revocations_invalidate(s);
        return anvil_store_fail(s, NULL, 0, "loading revocations: %s",
                                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
    }
    s->revoked_loaded = true;
    return 0;
}

static int cmp_revocation(const void *key, const void *elem)
{
    return strcmp(key, ((const struct anvil_revocation *)elem)->token_id);
}

int anvil_store_token_revoked(void *ctx, const char *token_id, int64_t *revoked_at_ms)
{
    anvil_store *s = ctx;
    int64_t version = 0;
    if (data_version(s, &version) != 0)
        return -1;
    if (!s->revoked_loaded || version != s->revoked_data_version) {
        if (load_revocations(s) != 0)
            return -1;
        s->revoked_data_version = version;
    }
    /* bsearch must not be handed the NULL array of an empty cache. */
    if (s->n_revoked == 0)
        return 0;
    /* ORDER BY token_id uses SQLite's BINARY collation, i.e. memcmp order,
     * which is what strcmp compares. */
    const struct anvil_revocation *hit =
        bsearch(token_id, s->revoked, s->n_revoked, sizeof *s->revoked, cmp_revocation);
    if (!hit)
        return 0;
    *revoked_at_ms = hit->at_ms;
    return 1;
}

/* Run one statement with (token_id, now) bound; returns rows changed or -1. */
static int run2(anvil_store *s, const char *sql, const char *token_id, int64_t now_ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    bind_text(st, 1, token_id);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
}

int anvil_store_token_revoke(anvil_store *s, const char *token_id, int64_t now_ms,
                             bool *was_known, char *err, size_t errlen)
{
    *was_known = false;
    char msg[200];
    if (anvil_store_exec(s, "BEGIN IMMEDIATE", msg, sizeof msg) != 0)
        return anvil_store_fail(s, err, errlen, "revoking %s: %s", token_id, msg);
    /* The first revocation time wins: revoking again must not extend a
     * token's life for clients that compared against the earlier time. */
    int changed = run2(s, "UPDATE tokens SET revoked_at_ms = COALESCE(revoked_at_ms, ?2)"
                          " WHERE token_id = ?1", token_id, now_ms);
    int inserted = changed < 0 ? -1 :
        run2(s, "INSERT INTO token_revocations(token_id, revoked_at_ms) VALUES (?1, ?2)"
                " ON CONFLICT(token_id) DO NOTHING", token_id, now_ms);
    if (inserted < 0 || anvil_store_exec(s, "COMMIT", msg, sizeof msg) != 0) {
        const char *why = inserted < 0 ? sqlite3_errmsg(s->db) : msg;
        anvil_store_fail(s, err, errlen, "revoking %s: %s", token_id, why);
        anvil_store_exec(s, "ROLLBACK", NULL, 0);
        return -1;
    }
    *was_known = changed > 0;
    /* data_version only moves for other connections' commits. */
    anvil_store_revocations_invalidate(s);
    return 0;
}
