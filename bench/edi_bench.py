"""X12 segments decoded per second: a generated 846 inventory interchange through the edi codec.

Run: ``python bench/edi_bench.py [--segments 200000] [--flat]``.
"""

from __future__ import annotations

import argparse
import io
import time

from engine.codecs.edi import EdiCodec


def inventory_846(segments: int) -> tuple[bytes, int]:
    """One interchange holding one 846 of about ``segments`` segments, and its segment count."""
    body = ["BIA*00*MM*INV1*20240131", "DTM*405*20240131"]
    item = 0
    while len(body) < segments - 8:
        item += 1
        body += [
            f"LIN*{item}*SK*SKU{item:08d}*UP*0123456{item:05d}",
            f"PID*F****ITEM NUMBER {item}",
            f"QTY*33*{item % 500}*EA",
            f"SCH*{item % 90}*EA***002*20240215",
        ]
    body.append(f"CTT*{item}")
    lines = [
        "ISA*00*          *00*          *ZZ*WAREHOUSE      *ZZ*SHOP           *240131*1200*^*"
        "00501*000000001*0*P*:",
        "GS*IB*WAREHOUSE*SHOP*20240131*1200*1*X*005010",
        "ST*846*0001",
        *body,
        f"SE*{len(body) + 2}*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    return ("~\n".join(lines) + "~\n").encode(), len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=200_000)
    parser.add_argument("--flat", action="store_true", help="decode with loops = false")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data, count = inventory_846(args.segments)
    codec = EdiCodec(loops=not args.flat)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        records = [r for c in codec.decode(io.BytesIO(data), source="846.edi") for r in c.records]
        best = min(best, time.perf_counter() - start)
        assert len(records) == 1
    mb = len(data) / 1e6
    print(
        f"846 interchange: {count} segments, {mb:.1f} MB, loops={'off' if args.flat else 'on'}: "
        f"{count / best:,.0f} segments/s ({mb / best:.1f} MB/s, best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
