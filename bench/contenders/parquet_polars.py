"""CSV -> the inventory fields -> Parquet with polars (lazy, streaming): parquet_polars.py IN OUT"""

import sys

import polars as pl

lf = pl.scan_csv(sys.argv[1], schema_overrides={"sku": pl.Utf8, "category": pl.Utf8})
lf.select(
    (pl.lit("PROD_") + pl.col("sku")).alias("product_id"),
    pl.col("name"),
    pl.col("quantity"),
    (pl.col("quantity") - pl.col("previous_quantity")).alias("delta"),
    pl.col("price"),
    pl.when(pl.col("category").is_null() | (pl.col("category") == ""))
    .then(pl.lit("General"))
    .otherwise(pl.col("category"))
    .alias("product_type"),
    pl.col("warehouse"),
    (pl.col("price") * 1.2).round(2).alias("cost"),
).sink_parquet(sys.argv[2])
