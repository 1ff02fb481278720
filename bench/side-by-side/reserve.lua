-- Reserves q units of one SKU for Redis, run with EVALSHA by redis-benchmark. Redis runs
-- a script alone on its command thread, so the check, the decrement and the record of the
-- reservation are atomic together.
--
-- KEYS[1]  reservation id counter (res:seq)
-- ARGV[1]  u, a uniform integer in [0, 2^30): redis-benchmark's __rand_int__ with
--          -r 1073741824 (2^30 divides the 2^31 values of random(), so u has no bias)
-- ARGV[2]  distribution: "uniform" or "zipf"
-- ARGV[3]  number of SKUs N
-- ARGV[4]  a second uniform integer in [0, 2^30), for the quantity q in 1..5
--
-- Returns the new reservation id, or 0 when the SKU has fewer than q units available.
local fraction = tonumber(ARGV[1]) / 1073741824
local skus = tonumber(ARGV[3])
local sku
if ARGV[2] == 'zipf' then
  -- Rank k = floor(N^fraction), drawn with probability about 1/k, is SKU k - 1.
  sku = math.floor(skus ^ fraction) - 1
else
  sku = math.floor(fraction * skus)
end
local quantity = 1 + tonumber(ARGV[4]) % 5

local key = 'sku:' .. sku
local available = tonumber(redis.call('GET', key))
if available == nil or available < quantity then
  return 0
end
redis.call('DECRBY', key, quantity)
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', 'res:' .. id, 'sku', sku, 'qty', quantity)
return id
