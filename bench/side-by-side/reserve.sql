-- pgbench script: one reservation per transaction, in one statement and one round trip.
-- Variables from pgbench -D: skus (N) and zipf (1 for the hot draw, 0 for uniform).
-- The draw is the one of reserve.lua and of promesa-loadgen: u uniform in [0, 2^30).
\set u random(0, 1073741823)
\if :zipf
-- Rank k = floor(N^(u / 2^30)), SKU k - 1. pgbench's int() rounds to the nearest
-- integer, so floor(x) is written int(x - 0.5).
\set sku greatest(int(pow(:skus, :u / 1073741824.0) - 0.5), 1) - 1
\else
-- floor(u / 2^30 * N) in integer arithmetic.
\set sku :u * :skus / 1073741824
\endif
\set quantity random(1, 5)
-- The INSERT runs only when the UPDATE found the SKU with enough units. The row lock
-- the UPDATE takes is held until the commit.
WITH taken AS (
    UPDATE sku SET available = available - :quantity
    WHERE id = :sku AND available >= :quantity
    RETURNING id
)
INSERT INTO reservation (sku, quantity) SELECT id, :quantity FROM taken;
