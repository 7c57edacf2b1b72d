"""What a multi-user Kubeflow profile's S3 key may do, read from KFP's own code.

From KFP 2.15.0 the profile controller (``sync.py`` in kubeflow/pipelines,
``manifests/kustomize/base/installs/multi-user/pipelines-profile-controller/``, vendored
unmodified as ``tests/fixtures/releases/kfp-<version>/sync.py``) creates one SeaweedFS
user per profile namespace through SeaweedFS's IAM API (``put_user_policy``) and stores
its key as the namespace's ``mlpipeline-minio-artifact`` Secret. :func:`profile_policy`
takes the policy document from that file's source (the dict literal passed as
``PolicyDocument``) and evaluates its f-strings for a namespace: nothing is copied by hand.

The statement names object ARNs only (``arn:aws:s3:::mlpipeline/private/<ns>/*``, ...)
with ``s3:Put*``, ``s3:Get*`` and ``s3:List*``. On AWS S3 that would not allow a
listing at all (ListObjects is authorised against the bucket ARN,
``arn:aws:s3:::mlpipeline``, which is not named). The policy is enforced by SeaweedFS,
the store KFP installs from 2.15.0, and SeaweedFS reads it differently;
:class:`SeaweedFsAuthorizer` models SeaweedFS 4.00 (the image
``chrislusf/seaweedfs:4.00`` that KFP 2.15.0 and 2.16.0 deploy; seaweedfs/seaweedfs
commit a154ef9a0fca4155b799effe432153cd45273d1d):

- ``weed/iamapi/iamapi_management_handlers.go`` ``GetActions``: each (resource, action)
  becomes ``<Action>:<bucket/path>``, with ``s3:Get*`` -> ``Read``, ``s3:Put*`` ->
  ``Write``, ``s3:List*`` -> ``List`` (``MapToStatementAction``).
- ``weed/s3api/s3api_server.go``: the action a request needs. Object GET/HEAD: Read;
  object PUT (also a copy or a part), POST (multipart start/complete), DELETE: Write;
  bucket GET (a listing): List; bucket HEAD and ``?location``: Read; bucket
  ``POST ?delete`` (multi-object delete): Write.
- ``weed/s3api/auth_credentials.go`` ``authRequest``/``canDo``: the object of a bucket
  request is the ``prefix`` query parameter (``/`` without one), so a listing is allowed
  when ``List:<bucket>/<prefix>`` starts with a granted ``List:<bucket>/<path>`` minus
  its ``*``. A listing under ``private/<ns>/`` is therefore allowed, one of
  ``private/<ns>`` (no slash) or of the whole bucket is not, and so are HEAD bucket and
  GetBucketLocation (the bucket's root is not granted).
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def profile_policy(sync_py: Path, namespace: str) -> dict[str, Any]:
    """The IAM policy document ``sync_py`` gives namespace ``namespace``'s S3 user."""
    tree = ast.parse(sync_py.read_text(encoding="utf-8"))
    constants: dict[str, Any] = {}
    for node in tree.body:  # module-level NAME = "literal", e.g. S3_BUCKET_NAME
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    documents = [
        keyword.value.args[0]
        for call in ast.walk(tree) if isinstance(call, ast.Call)
        for keyword in call.keywords
        if keyword.arg == "PolicyDocument" and isinstance(keyword.value, ast.Call)
        and keyword.value.args and isinstance(keyword.value.args[0], ast.Dict)
    ]
    if len(documents) != 1:
        raise ValueError(f"{sync_py}: expected one PolicyDocument=json.dumps({{...}}) literal, "
                         f"found {len(documents)}; has the profile controller changed?")
    code = compile(ast.Expression(documents[0]), str(sync_py), "eval")
    return dict(eval(code, {"__builtins__": {}}, {**constants, "namespace": namespace}))


_STATEMENT_ACTIONS = {"*": "Admin", "Put*": "Write", "PutBucketAcl": "WriteAcp",
                      "Get*": "Read", "GetBucketAcl": "ReadAcp", "List*": "List",
                      "Tagging*": "Tagging", "DeleteBucket*": "DeleteBucket"}


def seaweedfs_actions(policy: dict[str, Any]) -> list[str]:
    """SeaweedFS 4.00's ``GetActions``: the identity actions a policy becomes."""
    actions = []
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            raise ValueError("SeaweedFS takes only Allow statements")
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            parts = resource.split(":")
            if len(parts) != 6 or parts[:3] != ["arn", "aws", "s3"]:
                continue
            for action in [statement["Action"]] if isinstance(statement["Action"], str) \
                    else statement["Action"]:
                service, _, name = action.partition(":")
                if service != "s3":
                    continue
                mapped = _STATEMENT_ACTIONS[name]
                actions.append(mapped if parts[5] == "*" else f"{mapped}:{parts[5]}")
    return actions


@dataclass(frozen=True)
class S3Request:
    """One request as the server routes it."""

    method: str
    bucket: str
    key: str  # "" for a bucket-level request
    query: dict[str, list[str]]

    @classmethod
    def parse(cls, method: str, path: str, query: str) -> S3Request:
        """From the HTTP method, the (unquoted) path-style path and the query string."""
        bucket, _, key = path.lstrip("/").partition("/")
        return cls(method, bucket, key, parse_qs(query, keep_blank_values=True))

    def action(self) -> str:
        """The SeaweedFS action the route of this request checks (s3api_server.go)."""
        if self.key:
            return "Read" if self.method in ("GET", "HEAD") else "Write"
        if self.method == "GET":
            return "Read" if "location" in self.query else "List"
        if self.method == "HEAD":
            return "Read"
        if self.method == "POST" and "delete" in self.query:
            return "Write"
        if self.method == "PUT":
            return "Admin"
        return "DeleteBucket" if self.method == "DELETE" else "Admin"

    def object(self) -> str:
        """The object ``authRequest`` checks: the key, or ``/<prefix>`` for a bucket request."""
        if self.key:
            return "/" + self.key
        return "/" + (self.query.get("prefix") or [""])[0]

    def describe(self) -> str:
        """``GET mlpipeline/private/x/...`` with the listing prefix when there is one."""
        prefix = self.query.get("prefix")
        where = f"{self.bucket}/{self.key}" + (f"?prefix={prefix[0]}" if prefix else "")
        return f"{self.method} {where}"


class SeaweedFsAuthorizer:
    """SeaweedFS 4.00's ``canDo`` for one identity's actions."""

    def __init__(self, actions: list[str]):
        self.actions = actions

    def allows(self, request: S3Request) -> bool:
        """Whether SeaweedFS would let this identity make ``request``."""
        if "Admin" in self.actions:
            return True
        action = request.action()
        if action in self.actions:
            return True
        target = f"{action}:{request.bucket}{request.object()}"
        admin_target = f"Admin:{request.bucket}{request.object()}"
        for granted in self.actions:
            if granted.endswith("*"):
                if target.startswith(granted[:-1]) or admin_target.startswith(granted[:-1]):
                    return True
            elif granted in (f"{action}:{request.bucket}", f"Admin:{request.bucket}"):
                return True
        return False

    def __call__(self, method: str, path: str, query: str) -> str | None:
        """The ``s3server`` authorize hook: None to allow, else why it is refused."""
        request = S3Request.parse(method, path, query)
        if self.allows(request):
            return None
        return f"{request.action()} on {request.bucket}{request.object()} is not granted"


def aws_allows(policy: dict[str, Any], request: S3Request) -> bool:
    """AWS IAM's reading of the same policy, for contrast: a listing needs the bucket ARN."""
    if request.key:
        needed = "s3:GetObject" if request.method in ("GET", "HEAD") else "s3:PutObject"
        resource = f"arn:aws:s3:::{request.bucket}/{request.key}"
    else:
        needed = "s3:ListBucket"
        resource = f"arn:aws:s3:::{request.bucket}"
    for statement in policy["Statement"]:
        actions = statement["Action"]
        resources = statement["Resource"]
        if any(fnmatch.fnmatchcase(needed, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        ):
            return True
    return False
