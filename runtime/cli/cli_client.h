/*
 * runtime/cli/cli_client.h — what every client verb of `anvil` shares
 * (runs, approvals, signal, cron, workflows, rpc): flag parsing with the
 * common --url/--token/--json/--help, the client built from them and the
 * environment, error printing and the exit status of an error.
 *
 * Exit statuses (docs/cli.md#exit-statuses): 0 success; 2 usage error
 * (nothing was sent); 3 the server could not be reached or did not answer
 * like a v1 gateway; a contract error exits by its HTTP status in the
 * generated error map: 400 -> 4, 401 -> 5, 403 -> 6, 404 -> 7, 409 -> 8,
 * 413 and 429 -> 9, anything else (5xx) -> 1. `runs watch` adds 10 (the run
 * failed) and 11 (cancelled).
 *
 * Ownership: a context borrows argv; anvil_cli_done releases its client.
 */
#ifndef ANVIL_CLI_CLIENT_H
#define ANVIL_CLI_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include "client.h"

enum {
    ANVIL_EXIT_OK = 0,
    ANVIL_EXIT_SERVER = 1,
    ANVIL_EXIT_USAGE = 2,
    ANVIL_EXIT_UNREACHABLE = 3,
    ANVIL_EXIT_INVALID = 4,
    ANVIL_EXIT_UNAUTHORIZED = 5,
    ANVIL_EXIT_FORBIDDEN = 6,
    ANVIL_EXIT_NOT_FOUND = 7,
    ANVIL_EXIT_CONFLICT = 8,
    ANVIL_EXIT_LIMITED = 9,
    ANVIL_EXIT_RUN_FAILED = 10,
    ANVIL_EXIT_RUN_CANCELLED = 11
};

#define ANVIL_CLI_MAX_POS 8

/* One verb-specific flag: a string (`--name VALUE`) or a switch (`--name`). */
typedef struct anvil_cli_opt {
    const char *name;
    const char **str;    /* string flag: where its value goes */
    bool *flag;          /* switch: set to true */
} anvil_cli_opt;

typedef struct anvil_cli_ctx {
    const char *verb;            /* "runs list", for messages */
    const char *usage;           /* the verb's --help text */
    const char *url, *token;
    bool url_from_flag;
    bool json, help;
    const char *pos[ANVIL_CLI_MAX_POS];
    int n_pos;
    anvil_client *client;
} anvil_cli_ctx;

/*
 * Parse argv[1..] (argv[0] is the verb's last word): the verb's opts (NULL-
 * name terminated), the common flags, and min_pos..max_pos positionals.
 * Returns -1 to go on, or the exit status to return now: 0 after printing
 * --help, 2 after a usage error on stderr.
 */
int anvil_cli_parse(anvil_cli_ctx *ctx, int argc, char **argv, const anvil_cli_opt *opts,
                    int min_pos, int max_pos);

/* Print "anvil VERB: MESSAGE" and the usage on stderr; returns 2. */
int anvil_cli_usage_error(const anvil_cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Build ctx->client: --url, else $ANVIL_URL, else http://127.0.0.1:7331;
 * --token, else $ANVIL_TOKEN. Returns -1 to go on, or 2 (bad URL). */
int anvil_cli_connect(anvil_cli_ctx *ctx);

/* Print err on stderr ("anvil VERB: CODE: message") and return its exit
 * status; clears err. */
int anvil_cli_fail(const anvil_cli_ctx *ctx, anvil_client_error *err);

/* The exit status of an error (see above). */
int anvil_cli_exit_code(const anvil_client_error *err);

void anvil_cli_done(anvil_cli_ctx *ctx);

/* One verb of a group (`anvil runs list`): called with argv starting at
 * the verb's own name. */
typedef struct anvil_cli_verb {
    const char *name;
    int (*run)(int argc, char **argv);
} anvil_cli_verb;

/* `anvil GROUP VERB ...` (argv[0] is GROUP): runs the verb argv[1] names;
 * help prints usage on stdout (0); none or an unknown one prints it on
 * stderr (2). */
int anvil_cli_dispatch(const char *group, int argc, char **argv, const char *usage,
                       const anvil_cli_verb *verbs, size_t n_verbs);

/* A JSON flag value (--input, --payload): an object/any value, or NULL
 * after a usage error was printed. */
cJSON *anvil_cli_json_arg(const anvil_cli_ctx *ctx, const char *flag, const char *text, bool object_only);

/* A non-negative integer flag given as text (NULL: not given, nothing
 * set) into *has and *out; false after a usage error was printed. */
bool anvil_cli_count_arg(const anvil_cli_ctx *ctx, const char *flag, const char *text, bool *has,
                         int64_t *out);

#endif
