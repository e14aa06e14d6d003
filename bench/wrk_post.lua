-- wrk: POST the same trigger-webhook request the clients send, so the
-- server-capacity check measures the request the benchmark makes.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "x")
wrk.headers["x-genauth-userpool-id"] = os.getenv("BENCH_USERPOOL_ID") or "x"
wrk.body = '{"webhookId":"6229ffaxxxxxxxxcade3e3d9",'
    .. '"requestHeaders":{"eventName":"test","data":{"description":"A test from authing"}},'
    .. '"requestBody":{"eventName":"test","data":{"description":"A test from authing"}}}'
