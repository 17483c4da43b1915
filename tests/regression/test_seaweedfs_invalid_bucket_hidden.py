"""``SeaweedFS(bucket="b")`` (the example a user would type) waits the whole startup timeout, then hides why.

S3 bucket names are 3-63 characters; weed starts fine but answers every request for bucket ``b`` with
``InvalidBucketName``. ``_wait_ready`` treats every exception as "not ready yet", polls until
``startup_timeout`` (60 s by default, 45 s seen with 40) and raises ``SeaweedFS did not become ready in 60.0s:
ClientError``: no word of the bucket. A refusal the server answered (a 4xx other than a connection problem)
should end the wait at once and be named.
"""

from __future__ import annotations

import time

import pytest

from gitfree.testing import SeaweedFS


def test_an_invalid_bucket_name_is_named_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - what it raises is the point
        SeaweedFS(bucket="b", startup_timeout=30).start()
    took = time.monotonic() - started
    assert "bucket" in str(caught.value).lower() and took < 25, f"after {took:.0f} s: {caught.value}"
