/*
 * handlers/streams.c — WebSocket subscriptions to run events and DevTools.
 *
 * streamRunEvents validates the request against the durable event log
 * (RunNotFound, SeqOutOfRange), works out the replay window and, when the
 * client is further behind than the window, the gap snapshot (the getRun
 * RunStateView); the transport's stream ops (anvil_call.streams, the
 * WebSocket's) register the stream on the calling connection, send the
 * replay right after the response and the live events after that.
 *
 * streamDevTools validates the run and afterSeq against the run's recorded
 * frames (afterSeq is a frameNo; fromSeq, the upstream's older name for it,
 * is the same value) and registers a DevTools stream through the same ops:
 * the snapshot goes right after the response and the deltas after that
 * (runtime/engine/devtools.c builds them).
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "config.h"
#include "run_lookup.h"
#include "schema.h"
#include "store_runs.h"

#define EVENT_WINDOW_DEFAULT 10000

/* The RunStateView of getRun, as JSON. NULL with call->err set. */
static cJSON *run_snapshot(anvil_call *call, const char *run_id)
{
    anvil_get_run_request req = { .run_id = (char *)run_id };
    anvil_get_run_response res;
    memset(&res, 0, sizeof res);
    cJSON *out = NULL;
    if (anvil_handle_get_run(call, &req, &res) == 0) {
        anvil_schema_error se;
        out = anvil_schema_encode(&anvil_schema_get_run_response, &res, &se);
        if (!out)
            anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "gap snapshot: %s: %s", se.path, se.message);
    }
    anvil_schema_free(&anvil_schema_get_run_response, &res);
    return out;
}

int anvil_handle_stream_run_events(anvil_call *call, const anvil_stream_run_events_request *req, anvil_stream_run_events_response *res)
{
    if (!call->streams)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL,
                               "streamRunEvents needs a WebSocket connection");
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    int64_t current = rec.last_seq;
    anvil_run_record_clear(&rec);
    if (req->has_after_seq && req->after_seq > current) {
        anvil_error_set(&call->err, ANVIL_ERR_SEQ_OUT_OF_RANGE, "afterSeq %lld is newer than current seq %lld",
                        (long long)req->after_seq, (long long)current);
        anvil_error_detail_int(&call->err, "afterSeq", req->after_seq);
        anvil_error_detail_int(&call->err, "currentSeq", current);
        return -1;
    }
    int64_t window = call->svc->config->event_window_size > 0 ? call->svc->config->event_window_size
                                                         : EVENT_WINDOW_DEFAULT;
    int64_t first = current - window + 1;   /* first seq inside the window */
    if (first < 1)
        first = 1;

    anvil_run_stream rs = { .run_id = req->run_id, .replay_after = current };
    if (req->has_after_seq) {
        rs.replay_after = req->after_seq;
        if (req->after_seq < first - 1) {
            rs.gap_from = req->after_seq + 1;
            rs.gap_to = first - 1;
            rs.replay_after = first - 1;
            if (!(rs.gap_snapshot = run_snapshot(call, req->run_id)))
                return -1;
        }
    }
    char stream_id[37];
    if (call->streams->run_events(call->conn, &rs, stream_id, &call->err) != 0)
        return -1;
    res->stream_id = strdup(stream_id);
    res->run_id = strdup(req->run_id);
    res->has_after_seq = req->has_after_seq;
    res->after_seq = req->after_seq;
    res->current_seq = current;
    if (!res->stream_id || !res->run_id)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}

/* The frame a DevTools stream starts at, from afterSeq and/or fromSeq:
 * *given is false when neither was sent. Two different values are
 * refused rather than one silently winning. */
static int dev_tools_start(anvil_call *call, const anvil_stream_dev_tools_request *req,
                           bool *given, int64_t *frame)
{
    *given = req->has_after_seq || req->has_from_seq;
    *frame = req->has_after_seq ? req->after_seq : req->from_seq;
    if (req->has_after_seq && req->has_from_seq && req->after_seq != req->from_seq) {
        anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                        "$.params.fromSeq: %lld differs from $.params.afterSeq (%lld); they name the"
                        " same frame", (long long)req->from_seq, (long long)req->after_seq);
        anvil_error_detail_str(&call->err, "path", "$.params.fromSeq");
        return -1;
    }
    return 0;
}

int anvil_handle_stream_dev_tools(anvil_call *call, const anvil_stream_dev_tools_request *req, anvil_stream_dev_tools_response *res)
{
    if (!call->streams)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL,
                               "streamDevTools needs a WebSocket connection");
    bool given;
    int64_t from;
    if (dev_tools_start(call, req, &given, &from) != 0)
        return -1;
    const char *name = req->has_after_seq ? "afterSeq" : "fromSeq";
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    int64_t latest = rec.frame_no;
    anvil_run_record_clear(&rec);
    if (given && from > latest) {
        anvil_error_set(&call->err, ANVIL_ERR_SEQ_OUT_OF_RANGE, "%s %lld is newer than the latest frame %lld",
                        name, (long long)from, (long long)latest);
        anvil_error_detail_int(&call->err, name, from);
        anvil_error_detail_int(&call->err, "currentSeq", latest);
        return -1;
    }
    /* The first frame sent is the snapshot (the baseline): the frame asked
     * for itself (the first frame for 0), else the latest frame. */
    int64_t base = given ? from : latest;
    int64_t start_after = base > 0 ? base - 1 : 0;
    char stream_id[37];
    if (call->streams->devtools(call->conn, req->run_id, start_after, stream_id, &call->err) != 0)
        return -1;
    res->stream_id = strdup(stream_id);
    res->run_id = strdup(req->run_id);
    res->has_after_seq = res->has_from_seq = given;
    res->after_seq = res->from_seq = from;
    if (!res->stream_id || !res->run_id)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}
