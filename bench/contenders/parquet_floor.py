"""CSV -> the inventory fields -> Parquet: csv.reader, Python expressions, pyarrow's writer
(100,000 rows per row group): parquet_floor.py IN OUT"""

import csv
import sys

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("product_id", pa.string()),
        ("name", pa.string()),
        ("quantity", pa.int64()),
        ("delta", pa.int64()),
        ("price", pa.float64()),
        ("product_type", pa.string()),
        ("warehouse", pa.string()),
        ("cost", pa.float64()),
    ]
)


def rows(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for sku, name, q, pq_, price, cat, wh, _ in r:
            q = int(q)
            p = float(price)
            yield ("PROD_" + sku, name, q, q - int(pq_), p, cat or "General", wh, round(p * 1.2, 2))


def write(writer, group):
    columns = zip(*group, strict=True)  # rows to columns
    arrays = [pa.array(c, t) for c, t in zip(columns, SCHEMA.types, strict=True)]
    writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))


with pq.ParquetWriter(sys.argv[2], SCHEMA) as writer:
    group = []
    for row in rows(sys.argv[1]):
        group.append(row)
        if len(group) == 100_000:
            write(writer, group)
            group = []
    if group:
        write(writer, group)
