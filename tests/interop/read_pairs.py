"""Read a directory of shadowdiff pair files with pyarrow, DuckDB and polars, as they are.

Prints one JSON object: for each library, the same handful of figures, which the Rust test
compares with what the project's own reader finds. Usage: read_pairs.py DIR
"""
import glob
import json
import os
import sys

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyarrow.compute as pc

root = sys.argv[1]
pattern = os.path.join(root, "**", "*.parquet")
out = {}

# pyarrow: a Hive-partitioned dataset.
dataset = ds.dataset(root, format="parquet", partitioning="hive")
table = dataset.to_table(columns=["pair_id", "captured_at", "baseline_status", "canary_error", "request_headers", "hour"])
first = pc.min(table["pair_id"]).as_py()
row = table.filter(pc.equal(table["pair_id"], first))
out["pyarrow"] = {
    "rows": table.num_rows,
    "min_pair_id": first,
    "canary_errors": table.num_rows - table["canary_error"].null_count,
    "baseline_status_sum": pc.sum(table["baseline_status"]).as_py(),
    "first_header_of_min_pair": row["request_headers"][0].as_py()[0]["name"],
    "captured_at_type": str(table.schema.field("captured_at").type),
    "hours": sorted({str(h).zfill(2) for h in table["hour"].to_pylist()}),
    "schema_version": pq.read_metadata(sorted(glob.glob(pattern, recursive=True))[0]).metadata[b"shadowdiff.schema_version"].decode(),
}

# DuckDB: SQL over the glob with Hive partitioning.
con = duckdb.connect()
r = con.execute(
    f"""
    SELECT count(*), min(pair_id), count(canary_error), sum(baseline_status),
           (SELECT request_headers[1].name FROM read_parquet('{pattern}') ORDER BY pair_id LIMIT 1),
           (SELECT list(DISTINCT CAST(hour AS VARCHAR) ORDER BY CAST(hour AS VARCHAR)) FROM read_parquet('{pattern}', hive_partitioning = true))
    FROM read_parquet('{pattern}', hive_partitioning = true)
    """
).fetchone()
out["duckdb"] = {
    "rows": r[0],
    "min_pair_id": r[1],
    "canary_errors": r[2],
    "baseline_status_sum": int(r[3]),
    "first_header_of_min_pair": r[4],
    "hours": [h.zfill(2) for h in r[5]],
}

# polars: a lazy scan.
lf = pl.scan_parquet(pattern, hive_partitioning=True)
df = lf.select(
    pl.len().alias("rows"),
    pl.col("pair_id").min().alias("min_pair_id"),
    pl.col("canary_error").is_not_null().sum().alias("canary_errors"),
    pl.col("baseline_status").cast(pl.Int64).sum().alias("baseline_status_sum"),
).collect()
first_headers = (
    lf.sort("pair_id").select(pl.col("request_headers").first()).collect()["request_headers"][0]
)
out["polars"] = {
    "rows": int(df["rows"][0]),
    "min_pair_id": df["min_pair_id"][0],
    "canary_errors": int(df["canary_errors"][0]),
    "baseline_status_sum": int(df["baseline_status_sum"][0]),
    "first_header_of_min_pair": first_headers[0]["name"],
}

print(json.dumps(out))
