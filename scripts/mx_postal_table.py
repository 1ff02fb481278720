#!/usr/bin/env python3
"""Builds a postal-code table for `promesa postal import` from Mexico's postal codes.

Reads DATA_DIR/mx_geo/mx_postal_codes.csv.gz (one row per postal code, GeoNames
via the data folder's README) and DATA_DIR/mx_geo/mx_estados.csv, and writes CSV rows
`country,postal_code,lat,lon`:

- one row per postal code, at its routing point (`lat_route`, `lng_route`);
- one region row per two-digit prefix (`06*`), at the population-weighted point of the
  state most of the prefix's codes belong to: postal-code prefixes are assigned by
  state, so an unknown code falls back to its state.

Usage: mx_postal_table.py DATA_DIR OUT.csv [--prefixes 03,06]
With --prefixes, only codes starting with one of the prefixes are written (the region
rows are always all written); the repository's sample is made that way.
"""

import argparse
import collections
import csv
import gzip
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("out")
    parser.add_argument("--prefixes", default="", help="comma-separated code prefixes to keep")
    args = parser.parse_args()
    prefixes = tuple(p for p in args.prefixes.split(",") if p)

    states = {}
    with open(os.path.join(args.data_dir, "mx_geo", "mx_estados.csv"), newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            states[row["cve_ent"]] = (row["popw_lat"], row["popw_lng"])

    codes = []
    states_by_prefix = collections.defaultdict(collections.Counter)
    path = os.path.join(args.data_dir, "mx_geo", "mx_postal_codes.csv.gz")
    with gzip.open(path, "rt", newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            code = row["postal_code"]
            states_by_prefix[code[:2]][row["cve_ent"]] += 1
            if not prefixes or code.startswith(prefixes):
                codes.append((code, row["lat_route"], row["lng_route"]))

    with open(args.out, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["country", "postal_code", "lat", "lon"])
        for code, lat, lon in sorted(codes):
            writer.writerow(["MX", code, lat, lon])
        for prefix in sorted(states_by_prefix):
            state = states_by_prefix[prefix].most_common(1)[0][0]
            lat, lon = states[state]
            writer.writerow(["MX", prefix + "*", lat, lon])


if __name__ == "__main__":
    main()
