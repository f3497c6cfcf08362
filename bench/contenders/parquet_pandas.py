"""CSV -> the inventory fields -> Parquet with pandas (100k-row chunks, pyarrow's writer):
parquet_pandas.py IN OUT"""

import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

writer = None
for df in pd.read_csv(
    sys.argv[1], dtype={"sku": str, "category": str}, keep_default_na=False, chunksize=100_000
):
    res = pd.DataFrame(
        {
            "product_id": "PROD_" + df["sku"],
            "name": df["name"],
            "quantity": df["quantity"],
            "delta": df["quantity"] - df["previous_quantity"],
            "price": df["price"],
            "product_type": df["category"].where(df["category"] != "", "General"),
            "warehouse": df["warehouse"],
            "cost": (df["price"] * 1.2).round(2),
        }
    )
    table = pa.Table.from_pandas(res, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(sys.argv[2], table.schema)
    writer.write_table(table)
writer.close()
