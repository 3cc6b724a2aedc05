-- Settings of the public API's role for short, interactive queries.
--
-- JIT compilation is off: PostgreSQL's cost model switches it on for queries
-- over large tables (a vector tile over a million lines, a count), and it then
-- spends ~380 ms compiling for a query that runs in ~50 ms (measured on a zoom-10
-- tile of bench_ogc.py's 1 M-line table). Interactive reads never gain from it.
-- (Each pooled connection also carries GEOBY_DATABASE_STATEMENT_TIMEOUT_MS.)

ALTER ROLE geoby_read SET jit = off;
