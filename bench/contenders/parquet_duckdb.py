"""CSV -> the inventory fields -> Parquet with DuckDB: parquet_duckdb.py IN OUT"""

import sys

import duckdb

src, out = sys.argv[1], sys.argv[2]
duckdb.sql(f"""COPY (SELECT 'PROD_' || sku AS product_id, name, quantity,
 quantity - previous_quantity AS delta, price,
 coalesce(nullif(category, ''), 'General') AS product_type, warehouse, round(price * 1.2, 2) AS cost
 FROM read_csv('{src}', header=true, types={{'sku':'VARCHAR','category':'VARCHAR',
 'quantity':'BIGINT','previous_quantity':'BIGINT','price':'DOUBLE'}}))
 TO '{out}' (FORMAT parquet)""")
