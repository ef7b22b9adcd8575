/*
 * runtime/base/log.h — one-line logs on stderr: "ts level message".
 */
#ifndef ANVIL_LOG_H
#define ANVIL_LOG_H

typedef enum anvil_log_level { ANVIL_LOG_DEBUG, ANVIL_LOG_INFO, ANVIL_LOG_WARN, ANVIL_LOG_ERROR } anvil_log_level;

void anvil_log(anvil_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Messages below `level` are dropped (default INFO; ANVIL_LOG=debug). */
void anvil_log_set_level(anvil_log_level level);

#endif
