/*
 * handlers/payload_bound.c — the maxPayload bound on read answers
 * (payload_bound.h).
 */
#include "payload_bound.h"
#include "config.h"

#define MAX_PAYLOAD_DEFAULT 1048576

int64_t anvil_handler_max_payload(const anvil_call *call)
{
    int64_t cap = call->svc->config ? call->svc->config->max_payload : 0;
    return cap > 0 ? cap : MAX_PAYLOAD_DEFAULT;
}

int anvil_handler_check_payload(anvil_call *call, size_t bytes, const char *what)
{
    int64_t cap = anvil_handler_max_payload(call);
    if ((uint64_t)bytes <= (uint64_t)cap)
        return 0;
    anvil_error_set(&call->err, ANVIL_ERR_PAYLOAD_TOO_LARGE,
                    "%s is %zu bytes, over the %lld-byte limit (maxPayload)", what, bytes,
                    (long long)cap);
    anvil_error_detail_int(&call->err, "maxBytes", cap);
    return -1;
}
