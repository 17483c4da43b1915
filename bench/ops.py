"""One benchmark operation, run in a fresh process: ``python -m bench.ops '<json>'``.

Prints one JSON line: ``{"seconds": ...}`` — the time of the operation itself, after
imports and setup (the parent measures the whole process and its peak RSS).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def md5_tree(root: Path) -> int:
    """The hashing floor: hashlib.md5 over every byte, one file after another."""
    total = 0
    for path in _files(root):
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                total += len(chunk)
    return total


def _s3(args: dict[str, Any]) -> Any:
    import boto3
    import botocore.config

    config = botocore.config.Config(max_pool_connections=args["threads"] + 4, s3={"addressing_style": "path"})
    return boto3.client(
        "s3",
        endpoint_url=args["endpoint"],
        aws_access_key_id=args["key"],
        aws_secret_access_key=args["secret"],
        region_name="us-east-1",
        config=config,
    )


def boto3_upload(args: dict[str, Any]) -> None:
    """The raw boto3 floor: put_object from a thread pool (the transfer manager's upload_file
    costs several times more per small file)."""
    client = _s3(args)
    root = Path(args["src"])

    def put(path: Path) -> None:
        client.put_object(
            Bucket=args["bucket"], Key=f"{args['prefix']}/{path.relative_to(root).as_posix()}", Body=path.read_bytes()
        )

    with ThreadPoolExecutor(max_workers=args["threads"]) as pool:
        list(pool.map(put, _files(root)))


def boto3_download(args: dict[str, Any]) -> None:
    client = _s3(args)
    dest = Path(args["dest"])
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=args["bucket"], Prefix=args["prefix"] + "/")
        for obj in page.get("Contents", [])
    ]

    def get(key: str) -> None:
        target = dest / key[len(args["prefix"]) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=args["bucket"], Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=args["threads"]) as pool:
        list(pool.map(get, keys))


def gitfree_op(args: dict[str, Any]) -> None:
    from gitfree import Store

    store = Store(
        args["store"],
        cache_dir=args["cache"],
        endpoint_url=args["endpoint"],
        access_key_id=args["key"],
        secret_access_key=args["secret"],
    )
    op = args["op"]
    start = time.perf_counter()
    if op.startswith("commit"):
        result: Any = store.commit(args["dataset"], args["src"]).number
    elif op.startswith("pull"):
        result = str(store.pull(args["ref"], args["dest"]))
    elif op == "log":
        result = len(store.log(args["dataset"]))
    elif op == "resolve":
        result = store.show(args["ref"]).number
    else:
        raise SystemExit(f"unknown gitfree op {op}")
    args["_seconds"] = time.perf_counter() - start
    args["_result"] = result


def main() -> None:
    args = json.loads(sys.argv[1])
    kind = args["kind"]
    start = time.perf_counter()
    if kind == "md5":
        args["_result"] = md5_tree(Path(args["src"]))
    elif kind == "boto3_upload":
        boto3_upload(args)
    elif kind == "boto3_download":
        boto3_download(args)
    elif kind == "gitfree":
        gitfree_op(args)
    else:
        raise SystemExit(f"unknown kind {kind}")
    seconds = args.get("_seconds", time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "result": args.get("_result")}))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: not part of what is measured


if __name__ == "__main__":
    main()
