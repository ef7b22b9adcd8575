-- wrk script: POST a JSON body with bearer auth.
--   BENCH_BODY  request body (default "{}")
--   BENCH_TOKEN bearer token (header omitted when empty)
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
