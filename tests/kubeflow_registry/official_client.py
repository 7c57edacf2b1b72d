"""Read a registered model with the official ``model-registry`` client, in a subprocess.

The client calls ``nest_asyncio.apply()``, which patches asyncio for the whole process;
running it in a child process keeps that out of the test process (KServe's model server
tests share it). The child prints what it read as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

_READER = r"""
import json, sys
from urllib.parse import urlsplit
from model_registry import ModelRegistry

url, name = sys.argv[1], sys.argv[2]
parts = urlsplit(url)
client = ModelRegistry(f"http://{parts.hostname}", parts.port, author="reader",
                       is_secure=False, user_token="test-token")
model = client.get_registered_model(name)
out = {"model": None, "versions": []}
if model is not None:
    out["model"] = {"id": model.id, "name": model.name, "state": str(model.state.value),
                    "custom_properties": model.custom_properties}
    for v in client.get_model_versions(name):
        a = client.get_model_artifact(name, v.name)
        out["versions"].append({
            "name": v.name, "id": v.id, "state": str(v.state.value), "author": v.author,
            "description": v.description, "custom_properties": v.custom_properties,
            "artifact": None if a is None else {
                "name": a.name, "uri": a.uri, "model_format_name": a.model_format_name,
                "model_format_version": a.model_format_version,
                "storage_key": a.storage_key, "storage_path": a.storage_path,
                "service_account_name": a.service_account_name,
                "custom_properties": a.custom_properties,
            },
        })
print(json.dumps(out))
"""


def read_registered_model(url: str, name: str) -> dict[str, Any]:
    """What ``model-registry`` 0.3.4 reads for ``name`` at ``url`` (a child process)."""
    done = subprocess.run(
        [sys.executable, "-c", _READER, url, name], capture_output=True, text=True,
        timeout=120, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"the official client failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
