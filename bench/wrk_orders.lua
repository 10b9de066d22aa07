-- wrk script: each request POSTs one single-line order with a fresh Idempotency-Key.
--   wrk -t2 -c32 -d20s --latency -s bench/wrk_orders.lua http://HOST:PORT -- PATH SKU TAG [TOKEN]
-- PATH is /api/v1/orders (wcs api) or /orders (bench/bare_intake.py); TAG keeps the
-- keys of one run apart from another's.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/api/v1/orders"
  sku = args[2] or "HOT-0001"
  tag = args[3] or "wrk"
  token = args[4]
  counter = 0
end

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", tag, id, counter)
  local body = string.format(
    '{"external_id":"%s","customer":{"name":"Bench Customer","phone":"+86 138 0013 8000"},'
    .. '"address":{"line1":"1 Test Road","city":"Shanghai","postal_code":"200000","country":"CN"},'
    .. '"lines":[{"sku":"%s","qty":1}],"priority":1,"service":"standard"}', key, sku)
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("POST", path, headers, body)
end
