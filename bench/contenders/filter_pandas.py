"""JSON Lines -> filter -> CSV with pandas (100k-line chunks): filter_pandas.py IN OUT"""

import sys

import pandas as pd

header = True
with open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    for df in pd.read_json(
        sys.argv[1], lines=True, chunksize=100_000, dtype=False, precise_float=True
    ):
        kept = df[(df["quantity"] > 2500) & (df["product_type"] != "General")]
        kept.to_csv(out, index=False, header=header, lineterminator="\r\n")
        header = False
