"""The test SeaweedFS answered ``InternalError`` to a PutObject once about 25 buckets held data (weed gives each
bucket's collection volumes of its own, 1 GiB each by default, as many as the free disk holds: 26 GB free here),
so a fresh clone's run failed whichever by-reference test came after the others' buckets (CI, issue 18). The
fixture now starts weed with small volumes and many of them."""

from __future__ import annotations

from gitfree.testing import SeaweedFS


def test_forty_buckets_holding_data_on_one_server() -> None:
    with SeaweedFS() as s3:
        client = s3.client(retries={"max_attempts": 1})
        for i in range(40):
            client.create_bucket(Bucket=f"many-{i:03d}")
            client.put_object(Bucket=f"many-{i:03d}", Key="k", Body=b"x")
        assert client.get_object(Bucket="many-039", Key="k")["Body"].read() == b"x"
