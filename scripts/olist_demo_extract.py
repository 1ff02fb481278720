#!/usr/bin/env python3
"""Builds the demo's real marketplace data from the Olist tables of the data folder.

Usage: olist_demo_extract.py DATA_DIR OUT_DIR

Reads DATA_DIR/olist (the 9,999-order sample with purchase times, the order items, the
customers, the sellers and the zip-prefix coordinates) and DATA_DIR/br_geo (municipality
seats), and writes to OUT_DIR:

- orders.csv: order_id, purchase_time (as Olist gives it, Brazil local time,
  YYYY-MM-DD HH:MM), lat, lon (the customer's zip prefix, municipality level), lines
  (SKU:QUANTITY joined by |, one line per product; quantity = items of the product in
  the order). Orders whose customer has no coordinates, or that have no items, are left
  out. Sorted by purchase time, then order id.
- locations.csv: code, kind, lat, lon for `promesa location import`. Each seller of the
  orders is a drop-ship vendor (kind drop_ship, method drop-ship) at its zip prefix, code
  S- and the first 12 hex digits of its id; three fulfilment centres (kind warehouse,
  method ship) sit at the seats of Sao Paulo, Rio de Janeiro and Belo Horizonte, the
  largest metro areas of the orders.
- stock.csv: sku, location, on_hand for `promesa stock import`, by a rule that makes
  some lines run short and some orders split: each seller has the units it sold of
  each product in these orders, one fewer for one (seller, product) pair in five
  (chosen by a hash of the two ids, so the choice is the same on every run); each
  fulfilment centre has 40% of the demand, rounded up, of the 300 products sold most
  and of every product a seller is short of (so such a product can come from a
  centre, in a second shipment, or run short when the centres' units are gone).

The SKU is the first 16 hex digits of Olist's product id. Rerunning with the same data
folder writes the same files.
"""

import collections
import csv
import gzip
import hashlib
import math
import os
import sys

SHORT_ONE_IN = 5
CENTRE_SHARE = 0.4
CENTRE_PRODUCTS = 300
CENTRES = [("FC-SAO-PAULO", "3550308"), ("FC-RIO", "3304557"), ("FC-BELO-HORIZONTE", "3106200")]


def read_csv(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    data, out = sys.argv[1], sys.argv[2]
    olist = os.path.join(data, "olist")
    os.makedirs(out, exist_ok=True)

    coordinates = {row["zip_code_prefix"]: (row["lat"], row["lng"]) for row in read_csv(os.path.join(olist, "olist_zip_prefix_coords.csv"))}
    customers = {row["customer_id"]: row["customer_zip_code_prefix"] for row in read_csv(os.path.join(olist, "olist_customers_dataset.csv.gz"))}
    sellers = {row["seller_id"]: row["seller_zip_code_prefix"] for row in read_csv(os.path.join(olist, "olist_sellers_dataset.csv"))}
    orders = read_csv(os.path.join(olist, "olist_orders_sample_first9999.csv"))
    wanted = {order["order_id"] for order in orders}

    # Items of the sample's orders: (order, product) -> quantity, and the seller.
    quantities = collections.OrderedDict()
    seller_of = {}
    for item in read_csv(os.path.join(olist, "olist_order_items_dataset.csv.gz")):
        if item["order_id"] not in wanted:
            continue
        sku = item["product_id"][:16]
        key = (item["order_id"], sku)
        quantities[key] = quantities.get(key, 0) + 1
        seller_of[key] = item["seller_id"]

    lines_of = collections.defaultdict(list)
    for (order_id, sku), quantity in quantities.items():
        lines_of[order_id].append((sku, quantity))

    kept = []
    demand_by_seller = collections.Counter()
    demand_by_sku = collections.Counter()
    for order in orders:
        point = coordinates.get(customers.get(order["customer_id"], ""))
        lines = lines_of.get(order["order_id"])
        if point is None or not lines:
            continue
        kept.append((order["order_purchase_timestamp"], order["order_id"], point, lines))
        for sku, quantity in lines:
            demand_by_seller[(seller_of[(order["order_id"], sku)], sku)] += quantity
            demand_by_sku[sku] += quantity
    kept.sort()

    with open(os.path.join(out, "orders.csv"), "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["order_id", "purchase_time", "lat", "lon", "lines"])
        for time, order_id, (lat, lon), lines in kept:
            writer.writerow([order_id, time, lat, lon, "|".join(f"{sku}:{quantity}" for sku, quantity in lines)])

    municipalities = {row["codigo_ibge"]: (row["latitude"], row["longitude"]) for row in read_csv(os.path.join(data, "br_geo", "br_municipios.csv"))}
    used_sellers = sorted({seller for seller, _ in demand_by_seller})
    with open(os.path.join(out, "locations.csv"), "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["code", "kind", "lat", "lon", "methods"])
        for code, municipality in CENTRES:
            lat, lon = municipalities[municipality]
            writer.writerow([code, "warehouse", lat, lon, "ship"])
        for seller in used_sellers:
            point = coordinates.get(sellers.get(seller, ""))
            if point is not None:
                writer.writerow(["S-" + seller[:12], "drop_ship", point[0], point[1], "drop_ship"])
    located = {seller for seller in used_sellers if coordinates.get(sellers.get(seller, "")) is not None}

    popular = [sku for sku, _ in sorted(demand_by_sku.items(), key=lambda item: (-item[1], item[0]))[:CENTRE_PRODUCTS]]
    centre_products = set(popular)
    with open(os.path.join(out, "stock.csv"), "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["sku", "location", "on_hand"])
        for (seller, sku), units in sorted(demand_by_seller.items()):
            if seller in located:
                digest = hashlib.sha256((seller + sku).encode()).digest()
                short = int.from_bytes(digest[:8], "big") % SHORT_ONE_IN == 0
                if short:
                    centre_products.add(sku)
                writer.writerow([sku, "S-" + seller[:12], units - 1 if short else units])
        for code, _ in CENTRES:
            for sku in sorted(centre_products):
                writer.writerow([sku, code, math.ceil(demand_by_sku[sku] * CENTRE_SHARE)])

    print(f"{len(kept)} orders, {len(located)} sellers and {len(CENTRES)} centres, "
          f"{len(demand_by_seller)} seller positions and {len(centre_products) * len(CENTRES)} centre positions")


if __name__ == "__main__":
    main()
