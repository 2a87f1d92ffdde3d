-- wrk: each request as one of the users, picked at random, with the bearer
-- token from the file LOAD_TOKENS (one a line). LOAD_METHOD (GET) and
-- LOAD_BODY (none; sent as application/json) shape the request; the path
-- is wrk's URL. LOAD_MIX = 1: instead, each request is one of the three
-- workloads of benches/load.sh at random (scripts/soak.sh); LOAD_MIX =
-- read: 9 reads (the RLS list, the cheap request) to 1 POST /rpc call
-- (benches/scale.sh).
local tokens = {}
for line in io.lines(os.getenv("LOAD_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = "Bearer " .. line end
end
local method = os.getenv("LOAD_METHOD") or "GET"
local body = os.getenv("LOAD_BODY")
local mix = os.getenv("LOAD_MIX") == "1"
local read_heavy = os.getenv("LOAD_MIX") == "read"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init()
  math.randomseed(seed or os.time())
end

request = function()
  local auth = tokens[math.random(#tokens)]
  if read_heavy then
    local pick = math.random(10)
    if pick <= 5 then
      return wrk.format("GET", "/orders", { Authorization = auth })
    elseif pick <= 9 then
      return wrk.format("GET", "/products?product_id=eq." .. math.random(8) .. "&select=product_id,name,price", {})
    else
      return wrk.format("POST", "/rpc/customer_tier", { Authorization = auth, ["Content-Type"] = "application/json" }, "{}")
    end
  end
  if mix then
    local pick = math.random(3)
    if pick == 1 then
      return wrk.format("GET", "/products?product_id=eq." .. math.random(8) .. "&select=product_id,name,price", {})
    elseif pick == 2 then
      return wrk.format("GET", "/orders", { Authorization = auth })
    else
      return wrk.format("POST", "/rpc/customer_tier", { Authorization = auth, ["Content-Type"] = "application/json" }, "{}")
    end
  end
  local headers = { Authorization = auth }
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, nil, headers, body)
end
