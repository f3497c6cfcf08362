"""JSON Lines -> filter -> CSV with polars (lazy, streaming): filter_polars.py IN OUT"""

import sys

import polars as pl

lf = pl.scan_ndjson(sys.argv[1])
lf.filter((pl.col("quantity") > 2500) & (pl.col("product_type") != "General")).sink_csv(
    sys.argv[2], line_terminator="\r\n"
)
