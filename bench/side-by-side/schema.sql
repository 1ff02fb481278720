-- Creates the PostgreSQL tables of the reservation workload afresh.
-- Run with: psql -v skus=N -v on_hand=UNITS -f schema.sql
SET client_min_messages = warning;
DROP TABLE IF EXISTS reservation, sku;

-- Fill factor 50 leaves room on each page, so a stock update stays a HOT update and
-- never touches the primary key index.
CREATE TABLE sku (
    id        int PRIMARY KEY,
    available bigint NOT NULL
) WITH (fillfactor = 50);
INSERT INTO sku SELECT g, :on_hand FROM generate_series(0, :skus - 1) AS g;

-- No foreign key and no timestamp, as on the Redis side.
CREATE TABLE reservation (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku      int NOT NULL,
    quantity int NOT NULL
);

VACUUM ANALYZE sku;
CHECKPOINT;
