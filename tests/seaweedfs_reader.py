"""A SeaweedFS with a second, read-only identity: a worker whose role may read and list a store, not write."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from gitfree.testing import SeaweedFS

READER = ("gitfree-reader", "s3cret-reader-" + uuid.uuid4().hex[:8])
"""The access key and secret of the identity allowed only ``Read`` and ``List``."""


class WithReader(SeaweedFS):
    """SeaweedFS with two identities: the admin (this server's own credentials) and :data:`READER`."""

    def command(self, data_dir: Path) -> list[str]:
        config = data_dir / "s3.json"
        identities = [
            {
                "name": "admin",
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
                "actions": ["Read", "List"],
            },
        ]
        config.write_text(json.dumps({"identities": identities}))
        return [*super().command(data_dir), f"-s3.config={config}"]

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`gitfree.Store` that reach this server as the reader."""
        return {"endpoint_url": self.endpoint, "access_key_id": READER[0], "secret_access_key": READER[1]}
