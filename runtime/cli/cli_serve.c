/*
 * runtime/cli/cli_serve.c — `anvil serve [--config F] [--listen H:P] [--db F]`.
 *
 * Flags override the config file. With --port-file the bound port is written
 * to a file once listening, so tests can ask for port 0 and learn the port
 * without racing.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli_serve.h"
#include "config.h"
#include "gateway.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: anvil serve [--config anvil.yaml] [--listen 127.0.0.1:7331] [--db anvil.db]\n"
                 "                   [--port-file FILE]\n");
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int anvil_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "db", required_argument, NULL, 'd' },
        { "port-file", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *listen = NULL, *db = NULL, *port_file = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:d:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 'p': port_file = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "anvil serve: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    const char *lvl = getenv("ANVIL_LOG");
    if (lvl && strcmp(lvl, "debug") == 0)
        anvil_log_set_level(ANVIL_LOG_DEBUG);

    /* Like `anvil token`, a config in the working directory is the default. */
    if (!config_path && access("anvil.yaml", R_OK) == 0) {
        config_path = "anvil.yaml";
        anvil_log(ANVIL_LOG_INFO, "using ./anvil.yaml (pass --config to choose another file)");
    }
    anvil_config cfg;
    anvil_diags diags = { 0 };
    int rc;
    if (config_path) {
        rc = anvil_config_load(config_path, &cfg, &diags);
    } else {
        rc = anvil_config_defaults(&cfg);
    }
    if (rc != 0) {
        anvil_diags_print(&diags, stderr);
        fprintf(stderr, "anvil serve: %s has problems; fix them or run `anvil check-config %s`\n",
                config_path ? config_path : "configuration", config_path ? config_path : "FILE");
        anvil_diags_clear(&diags);
        anvil_config_clear(&cfg);
        return 1;
    }
    anvil_diags_clear(&diags);
    /* The config's format from here on (before any thread starts). */
    if (cfg.log_format)
        anvil_log_set_format((anvil_log_format)anvil_log_format_parse(cfg.log_format));
    if (listen) {
        char *host = NULL;
        int port = 0;
        if (anvil_parse_listen(listen, &host, &port) != 0) {
            anvil_log(ANVIL_LOG_ERROR, "anvil serve: --listen %s: expected HOST:PORT", listen);
            anvil_config_clear(&cfg);
            return 2;
        }
        free(cfg.listen_host);
        cfg.listen_host = host;
        cfg.listen_port = port;
    }
    if (db) {
        char *copy = strdup(db);
        if (!copy) {
            anvil_config_clear(&cfg);
            return 1;
        }
        free(cfg.database);
        cfg.database = copy;
    }
    if (cfg.auth.mode == ANVIL_AUTH_OPEN)
        anvil_log(ANVIL_LOG_WARN, "NO AUTH CONFIGURED: every caller is role operator with scopes [\"*\"]. "
                                  "Configure auth.mode (token, jwt or trusted-proxy) before exposing this server.");

    /* Room for many sockets (the WebSocket side holds thousands). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Past the descriptor limit, accept() fails before maxHttpConnections
     * is reached: clients wait in the backlog instead of getting the 503.
     * Say so once rather than let the cap look configured. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)(cfg.max_http_connections + cfg.max_connections + 64))
        anvil_log(ANVIL_LOG_WARN, "the open-file limit (%llu) is below maxHttpConnections (%lld) + "
                                  "maxConnections (%lld): connections past it wait unanswered",
                  (unsigned long long)rl.rlim_cur, (long long)cfg.max_http_connections,
                  (long long)cfg.max_connections);
    signal(SIGPIPE, SIG_IGN);

    /* The changelist folds the changes one loop turn makes to a socket's
     * interest into one epoll_ctl at the next wait, or none: a held answer
     * stops reading its connection and resumes in the same turn, once its
     * batch commits (2 of the 4 epoll_ctl calls a launch made). No file
     * descriptor here is dup()ed, which the changelist cannot tell apart. */
    struct event_config *ecfg = event_config_new();
    struct event_base *base = NULL;
    if (ecfg && event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(ecfg);
    if (ecfg)
        event_config_free(ecfg);
    if (!base) {
        anvil_log(ANVIL_LOG_ERROR, "anvil serve: cannot create the event loop");
        anvil_config_clear(&cfg);
        return 1;
    }
    char err[512];
    anvil_diags wdiags = { 0 };
    anvil_gateway *gw = anvil_gateway_start(base, &cfg, &wdiags, err, sizeof err);
    anvil_diags_log(&wdiags, ANVIL_LOG_WARN);
    anvil_diags_clear(&wdiags);
    if (!gw) {
        anvil_log(ANVIL_LOG_ERROR, "anvil serve: %s", err);
        event_base_free(base);
        return 1;
    }
    int port = anvil_http_server_port(gw->http);
    anvil_log(ANVIL_LOG_INFO, "anvil listening on http://%s:%d (database %s, %zu workflows, auth %s)",
              gw->cfg.listen_host, port, gw->cfg.database, gw->cfg.n_workflows,
              gw->cfg.auth.mode == ANVIL_AUTH_TOKEN ? "token"
              : gw->cfg.auth.mode == ANVIL_AUTH_JWT ? "jwt"
              : gw->cfg.auth.mode == ANVIL_AUTH_TRUSTED_PROXY ? "trusted-proxy" : "open");
    if (port_file && write_port_file(port_file, port) != 0) {
        anvil_log(ANVIL_LOG_ERROR, "anvil serve: cannot write --port-file %s", port_file);
        anvil_gateway_free(gw);
        event_base_free(base);
        return 1;
    }
    event_base_dispatch(base);
    anvil_gateway_free(gw);
    event_base_free(base);
    anvil_log(ANVIL_LOG_INFO, "anvil stopped");
    return 0;
}
