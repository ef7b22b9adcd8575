/*
 * tests/unit/test_clock.c — the random ids of base/clock.c: version-4 UUIDs,
 * and the time-ordered version-7 UUIDs generated run ids are made of
 * (run_ + their 32 hex digits): the shape the contract's clients expect
 * (^run_[0-9a-f]{32}$ once the dashes are gone), the millisecond in the
 * first 48 bits, and ids made later sorting after earlier ones, within one
 * millisecond and when the clock steps back too.
 */
#include "clock.h"
#include "unit.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* 8-4-4-4-12 lowercase hex with the given version digit and an RFC 9562
 * variant digit (8, 9, a or b). */
static bool uuid_shape(const char *u, char version)
{
    if (strlen(u) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]) || !u[i])
            return false;
    }
    return u[14] == version && strchr("89ab", u[19]) != NULL;
}

/* The run id the engine makes of u: run_ and the hex digits. */
static void run_id_of(const char *u, char out[37])
{
    char *p = out + 4;
    memcpy(out, "run_", 4);
    for (; *u; u++)
        if (*u != '-')
            *p++ = *u;
    *p = '\0';
}

static bool run_id_shape(const char *id)
{
    if (strlen(id) != 36 || strncmp(id, "run_", 4) != 0)
        return false;
    for (const char *p = id + 4; *p; p++)
        if (!strchr("0123456789abcdef", *p))
            return false;
    return true;
}

static int64_t ms_of(const char *u)
{
    int64_t ms = 0;
    for (int i = 0; i < 13; i++) {
        if (u[i] == '-')
            continue;
        char c = u[i];
        ms = ms << 4 | (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return ms;
}

static void test_uuid4(void)
{
    char a[37], b[37];
    CHECK_INT(anvil_uuid4(a), 0);
    CHECK_INT(anvil_uuid4(b), 0);
    CHECK(uuid_shape(a, '4'));
    CHECK(strcmp(a, b) != 0);
}

static void test_uuid7_shape_and_time(void)
{
    char u[37], id[37];
    int64_t now = anvil_now_ms();
    CHECK_INT(anvil_uuid7(now, u), 0);
    CHECK(uuid_shape(u, '7'));
    CHECK_INT(ms_of(u), now);
    run_id_of(u, id);
    CHECK(run_id_shape(id));

    /* A later millisecond sorts after, whatever the random bits were. */
    char later[37];
    CHECK_INT(anvil_uuid7(now + 1, later), 0);
    CHECK(strcmp(later, u) > 0);
    CHECK_INT(ms_of(later), now + 1);
}

/* Out-of-range times are clamped to 48 bits, not wrapped. Last: the ids
 * made after it in this thread keep its time (they count up from it). */
static void test_uuid7_clamped(void)
{
    char u[37];
    CHECK_INT(anvil_uuid7(INT64_C(1) << 50, u), 0);
    CHECK(uuid_shape(u, '7'));
    CHECK(strncmp(u, "ffffffff-ffff-7", 15) == 0);
}

/* 100,000 ids in one millisecond, then with the clock going back: each
 * sorts after the one before, as an id and as a run id. */
static void test_uuid7_increasing(void)
{
    char prev[37], cur[37], prev_id[37], cur_id[37];
    int64_t base = INT64_C(1790000000000);
    CHECK_INT(anvil_uuid7(base, prev), 0);
    run_id_of(prev, prev_id);
    int out_of_order = 0, bad_shape = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t ms = i < 50000 ? base : base - (i - 50000);  /* then the clock steps back */
        if (anvil_uuid7(ms, cur) != 0 || !uuid_shape(cur, '7'))
            bad_shape++;
        run_id_of(cur, cur_id);
        if (strcmp(cur, prev) <= 0 || strcmp(cur_id, prev_id) <= 0)
            out_of_order++;
        memcpy(prev, cur, sizeof prev);
        memcpy(prev_id, cur_id, sizeof prev_id);
    }
    CHECK_INT(bad_shape, 0);
    CHECK_INT(out_of_order, 0);
    /* The clock going back did not move the ids' time back. */
    CHECK(ms_of(cur) >= base);

    /* With the real clock, as the engine calls it. */
    int64_t t0 = anvil_now_ms();
    out_of_order = 0;
    for (int i = 0; i < 20000; i++) {
        if (anvil_uuid7(anvil_now_ms(), cur) != 0 || strcmp(cur, prev) <= 0)
            out_of_order++;
        memcpy(prev, cur, sizeof prev);
    }
    CHECK_INT(out_of_order, 0);
    CHECK(ms_of(cur) >= t0);
}

int main(void)
{
    test_uuid4();
    test_uuid7_shape_and_time();
    test_uuid7_increasing();
    test_uuid7_clamped();
    UNIT_DONE();
}
