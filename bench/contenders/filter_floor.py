"""JSON Lines -> filter -> CSV in plain Python (orjson + csv.writer): filter_floor.py IN OUT"""

import csv
import sys

import orjson

with open(sys.argv[1], "rb") as f, open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    loads = orjson.loads
    w = None
    for line in f:
        r = loads(line)
        if r["quantity"] > 2500 and r["product_type"] != "General":
            if w is None:
                w = csv.writer(out)
                w.writerow(r)
            w.writerow(r.values())
