/*
 * tests/unit/unit.h — the tiny assertion harness every C unit test uses.
 *
 * A failed CHECK prints file:line and the expression and marks the test
 * failed; the program keeps going so one run reports every failure, and
 * UNIT_DONE() turns the tally into the exit status CTest reads.
 */
#ifndef ANVIL_UNIT_H
#define ANVIL_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(expr) do { \
    unit_checks++; \
    if (!(expr)) { \
        unit_failures++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
    } \
} while (0)

#define CHECK_STR(a, b) do { \
    const char *unit_a_ = (a), *unit_b_ = (b); \
    unit_checks++; \
    if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) { \
        unit_failures++; \
        fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", \
                __FILE__, __LINE__, #a, unit_a_ ? unit_a_ : "(null)", \
                unit_b_ ? unit_b_ : "(null)"); \
    } \
} while (0)

#define CHECK_INT(a, b) do { \
    long long unit_a_ = (long long)(a), unit_b_ = (long long)(b); \
    unit_checks++; \
    if (unit_a_ != unit_b_) { \
        unit_failures++; \
        fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, expected %lld\n", \
                __FILE__, __LINE__, #a, unit_a_, unit_b_); \
    } \
} while (0)

#define UNIT_DONE() do { \
    printf("%d checks, %d failed\n", unit_checks, unit_failures); \
    return unit_failures == 0 ? 0 : 1; \
} while (0)

#endif
