/*
 * runtime/base/log.c — timestamped stderr logging.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static anvil_log_level min_level = ANVIL_LOG_INFO;

void anvil_log_set_level(anvil_log_level level)
{
    min_level = level;
}

void anvil_log(anvil_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (level < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L, names[level], line);
}
