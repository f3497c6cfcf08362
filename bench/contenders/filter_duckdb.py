"""JSON Lines -> filter -> CSV with DuckDB: filter_duckdb.py IN OUT"""

import sys

import duckdb

src, out = sys.argv[1], sys.argv[2]
duckdb.sql(
    f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited')"
    f" WHERE quantity > 2500 AND product_type <> 'General') TO '{out}' (FORMAT csv, HEADER)"
)
