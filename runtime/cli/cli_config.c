/*
 * runtime/cli/cli_config.c — the `anvil check-config` command.
 *
 * Owns only the command's arguments and output; loading and validation are
 * config.c's. Every problem is printed, not just the first, so one run
 * fixes a whole file.
 */
#include "cli_config.h"
#include "workflow.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "launch_input.h"

static const char USAGE[] = "usage: anvil check-config FILE\n";

static const char *mode_name(anvil_auth_mode m)
{
    switch (m) {
    case ANVIL_AUTH_TOKEN: return "auth token";
    case ANVIL_AUTH_JWT: return "auth jwt";
    case ANVIL_AUTH_TRUSTED_PROXY: return "auth trusted-proxy";
    default: return "auth open";
    }
}

int anvil_cli_check_config(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "anvil check-config: unknown option %s\n%s", argv[i], USAGE);
            return 2;
        }
        if (file) {
            fprintf(stderr, "anvil check-config: unexpected argument %s\n%s", argv[i], USAGE);
            return 2;
        }
        file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "anvil check-config: missing FILE\n%s", USAGE);
        return 2;
    }
    anvil_config cfg;
    anvil_diags diags = {0};
    int rc = anvil_config_load(file, &cfg, &diags);
    /* Each workflow file gets the same full check `serve` runs at start:
     * node kinds, ids, references, templates. Files the config loader
     * already found unusable (missing, not a regular file, too big, not
     * YAML, empty, not a mapping) were reported once and are not read
     * again. */
    for (size_t i = 0; i < cfg.n_workflows; i++) {
        const char *wf_file = cfg.workflows[i].file;
        if (!wf_file || !cfg.workflows[i].file_ok)
            continue;
        anvil_diags wd = {0};
        anvil_workflow *wf = NULL;
        if (anvil_workflow_load(wf_file, &wf, &wd) != 0) {
            rc = -1;
            for (size_t k = 0; k < wd.n; k++) {
                bool dup = false;
                for (size_t j = 0; j < diags.n && !dup; j++)
                    dup = diags.items[j].line == wd.items[k].line &&
                          !strcmp(diags.items[j].file, wd.items[k].file) &&
                          !strcmp(diags.items[j].message, wd.items[k].message);
                if (!dup)
                    anvil_diags_add(&diags, wd.items[k].file, wd.items[k].line, wd.items[k].column,
                                    "%s", wd.items[k].message);
            }
            diags.n_dropped += wd.n_dropped;
        } else {
            char warning[1200];
            if (anvil_launch_input_schedule_warning(&cfg.workflows[i], wf, warning,
                                                    sizeof warning))
                fprintf(stderr, "%s:%d: warning: %s\n", file, cfg.workflows[i].line, warning);
        }
        anvil_workflow_free(wf);
        anvil_diags_clear(&wd);
    }
    if (rc != 0) {
        anvil_diags_print(&diags, stderr);
        size_t n = diags.n + diags.n_dropped;
        fprintf(stderr, "%s: %zu problem%s\n", file, n, n == 1 ? "" : "s");
    } else {
        printf("%s: ok (%zu workflow%s, %s)\n", file, cfg.n_workflows,
               cfg.n_workflows == 1 ? "" : "s", mode_name(cfg.auth.mode));
    }
    anvil_diags_clear(&diags);
    anvil_config_clear(&cfg);
    return rc != 0 ? 1 : 0;
}
