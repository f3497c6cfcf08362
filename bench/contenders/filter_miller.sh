#!/bin/sh
# JSON Lines -> filter -> CSV with Miller: filter_miller.sh IN OUT
exec mlr --ijsonl --ocsv filter '$quantity > 2500 && $product_type != "General"' "$1" > "$2"
