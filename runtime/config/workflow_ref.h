/*
 * runtime/config/workflow_ref.h — one entry of the config's `workflows`
 * section: where the workflow file is, its schedule and its webhook.
 *
 * Types only, so both the config (which holds the list) and the section
 * parser (which fills it) can use them without including each other.
 * Ownership: every string belongs to the config holding the entry.
 */
#ifndef ANVIL_WORKFLOW_REF_H
#define ANVIL_WORKFLOW_REF_H

#include "config_ui.h"
#include <stdbool.h>

typedef struct anvil_webhook_config {
    char *secret;
    char *signature_header;      /* default "x-hub-signature-256" */
    char *signature_prefix;      /* default "sha256=" */
    /* Header naming each delivery, for idempotent redeliveries (only with
     * a secret); default "x-github-delivery", NULL when the config turned
     * it off with "". */
    char *delivery_id_header;
    bool run_enabled;
    char *run_input_path;
    char *signal_name;           /* NULL = no signal delivery */
    char *signal_correlation_path;
    char *signal_run_id_path;
    char *signal_payload_path;
} anvil_webhook_config;

typedef struct anvil_workflow_ref {
    char *name;                  /* registry key */
    char *file;                  /* absolute or config-relative resolved path */
    int line;                    /* where it was declared in the config */
    char *schedule;              /* cron pattern or NULL */
    bool has_webhook;
    anvil_webhook_config webhook;
    anvil_ui_config ui;          /* its UI mount; ui.path NULL = none */
    /* Read from the workflow file header at load time. */
    char *description;           /* may be NULL */
    char *readable_name;         /* the file's `name:`; may be NULL */
    bool file_ok;                /* it loaded as a YAML mapping; the full check of
                                    the tree is the workflow loader's */
} anvil_workflow_ref;

#endif
