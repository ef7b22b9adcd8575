/*
 * runtime/base/clock.c — time and random ids (version 4, and time-ordered
 * version 7 for keys that should land at the end of an index).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "clock.h"

int64_t anvil_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int anvil_time_iso8601(int64_t ms, char out[ANVIL_ISO8601_SIZE])
{
    /* Floor division: a time before the epoch keeps positive milliseconds. */
    int64_t sec = ms / 1000, milli = ms % 1000;
    if (milli < 0) {
        milli += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    char day[24];
    out[0] = '\0';
    if ((int64_t)t != sec || !gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 ||
        !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    snprintf(out, ANVIL_ISO8601_SIZE, "%s.%03dZ", day, (int)milli);
    return 0;
}

int64_t anvil_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RAND_bytes takes the DRBG's locks on every call; most requests without an
 * id need a fresh UUID, so draw random bytes in blocks. Per thread, because
 * the WebSocket service thread may mint ids too. */
static __thread unsigned char pool[1024];
static __thread size_t pool_left;

static int random_bytes(unsigned char *b, size_t n)
{
    if (pool_left < n) {
        if (RAND_bytes(pool, sizeof pool) != 1)
            return -1;
        pool_left = sizeof pool;
    }
    memcpy(b, pool + sizeof pool - pool_left, n);
    /* Used bytes are wiped so ids cannot be recovered from memory later. */
    memset(pool + sizeof pool - pool_left, 0, n);
    pool_left -= n;
    return 0;
}

static void uuid_text(const unsigned char b[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
}

int anvil_uuid4(char out[37])
{
    unsigned char b[16];
    if (random_bytes(b, sizeof b) != 0)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_text(b, out);
    return 0;
}

/* The last version-7 UUID this thread made: its millisecond and its 74
 * random bits (rand_a's 12 above rand_b's 62), so the next one can be
 * placed after it. */
static __thread int64_t last7_ms = -1;
static __thread uint64_t last7_hi, last7_lo;

#define RAND_B_BITS 62
#define RAND_B_MASK ((UINT64_C(1) << RAND_B_BITS) - 1)
#define RAND_A_MASK UINT64_C(0xfff)

static uint64_t load64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

int anvil_uuid7(int64_t ms, char out[37])
{
    unsigned char r[16];
    if (random_bytes(r, sizeof r) != 0)
        return -1;
    uint64_t hi = load64(r) & RAND_A_MASK, lo = load64(r + 8) & RAND_B_MASK;
    if (ms < 0)
        ms = 0;
    if (ms > (int64_t)0xffffffffffff)
        ms = (int64_t)0xffffffffffff;
    if (ms <= last7_ms) {
        /* The same millisecond (or the clock stepped back): count up from
         * the last id by a random step of up to 2^32, so ids of this
         * thread still sort in the order they were made and the next one
         * cannot be guessed from the last. 2^74 leaves room for 2^42 of
         * them in one millisecond; past that, borrow the next one. */
        uint64_t step = 1 + (load64(r) >> 32);
        ms = last7_ms;
        hi = last7_hi;
        lo = last7_lo + step;
        if (lo > RAND_B_MASK) {
            lo &= RAND_B_MASK;
            if (++hi > RAND_A_MASK) {
                hi = 0;
                ms++;
            }
        }
    }
    last7_ms = ms;
    last7_hi = hi;
    last7_lo = lo;
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | hi >> 8);
    b[7] = (unsigned char)hi;
    b[8] = (unsigned char)(0x80 | lo >> 56);
    for (int i = 9; i < 16; i++)
        b[i] = (unsigned char)(lo >> (120 - 8 * i));
    uuid_text(b, out);
    return 0;
}

int anvil_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct { const char *suffix; int64_t ms; } units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    int64_t v = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / units[i].ms)
            return -1;
        *out_ms = v * units[i].ms;
        return 0;
    }
    return -1;
}
