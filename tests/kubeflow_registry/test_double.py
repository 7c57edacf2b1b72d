"""The Model Registry double refuses what the v0.3.4 server refuses, and checks itself.

If the double accepted anything, the tests that use it would prove nothing: these send
requests that break the spec and check each is answered as the server answers (400 with
the spec's ``Error`` body, 404, 409) and recorded as a violation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.kubeflow_registry.model_registry_double import API, ModelRegistryDouble, Spec, serve

MODEL = {"name": "iris"}


@pytest.fixture
def double():
    with serve() as d:
        yield d


def call(double, method, path, body=None, base=API):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{double.url}{base}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode()


@pytest.mark.parametrize("body, says", [
    ({"name": "iris", "id": "7"}, "id is not a field"),                       # server-generated
    ({"name": "iris", "createTimeSinceEpoch": "1"}, "not a field"),           # output only
    ({"description": "no name"}, "'name' is a required property"),
    ({"name": "iris", "state": "GONE"}, "'GONE' is not one of"),
    ({"name": "iris", "customProperties": {"k": {"string_value": "v"}}}, "metadataType"),
    ({"name": "iris", "customProperties": {"k": {"metadataType": "MetadataIntValue",
                                                 "int_value": "seven"}}}, "does not match"),
])
def test_bad_bodies_are_400_with_the_spec_error_and_recorded(double, body, says):
    status, answer = call(double, "POST", "/registered_models", body)
    assert status == 400
    assert answer["code"] == "Bad Request" and says in answer["message"]
    assert double.violations and says in double.violations[-1]
    double.violations.clear()


def test_artifacts_are_typed_by_their_discriminator(double):
    call(double, "POST", "/registered_models", MODEL)
    status, version = call(double, "POST", "/model_versions",
                           {"name": "1", "registeredModelId": "1"})
    assert status == 201 and version["id"] == "2" and version["state"] == "LIVE"
    path = f"/model_versions/{version['id']}/artifacts"
    # No artifactType: the oneOf cannot be resolved.
    status, answer = call(double, "POST", path, {"name": "m", "uri": "s3://b/k"})
    assert status == 400 and "artifactType" in answer["message"]
    # A model artifact's field on a doc artifact is unknown to that type.
    status, answer = call(double, "POST", path, {"artifactType": "doc-artifact", "name": "d",
                                                 "modelFormatName": "sklearn"})
    assert status == 400 and "modelFormatName is not a field" in answer["message"]
    double.violations.clear()
    status, created = call(double, "POST", path, {"artifactType": "model-artifact", "name": "m",
                                                  "uri": "s3://b/k", "modelFormatName": "sklearn"})
    assert status == 201 and created["id"] == "1" and created["artifactType"] == "model-artifact"
    status, updated = call(double, "POST", path, {**created, "uri": "s3://b/k2"})
    # The full entity carries output-only fields: refused (stricter than the server,
    # which ignores them; a client should not send them).
    assert status == 400
    double.violations.clear()
    status, updated = call(double, "POST", path, {"artifactType": "model-artifact",
                                                  "id": created["id"], "uri": "s3://b/k2"})
    assert status == 200 and updated["uri"] == "s3://b/k2"
    status, page = call(double, "GET", f"{path}?artifactType=model-artifact")
    assert page["size"] == 1 and page["nextPageToken"] == ""


def test_names_are_unique_and_lookups_answer_404(double):
    assert call(double, "POST", "/registered_models", MODEL)[0] == 201
    status, answer = call(double, "POST", "/registered_models", MODEL)
    assert status == 409 and answer["code"] == "Conflict"
    call(double, "POST", "/model_versions", {"name": "1", "registeredModelId": "1"})
    status, _ = call(double, "POST", "/model_versions", {"name": "1", "registeredModelId": "1"})
    assert status == 409
    status, answer = call(double, "GET", "/registered_model?name=nope")
    assert status == 404 and answer["code"] == "Not Found"
    status, answer = call(double, "GET", "/model_versions/99")
    assert status == 404
    assert double.violations == []


def test_unknown_routes_and_query_values_are_refused(double):
    assert call(double, "GET", "/registered_models", base="/api/model_registry/v1") == (
        404, "404 page not found\n")
    status, _ = call(double, "GET", "/registered_models?orderBy=NAME")
    assert status == 400 and any("'NAME' is not one of" in v for v in double.violations)
    status, _ = call(double, "GET", "/registered_models?color=red")
    assert status == 400 and any("'color' is not declared" in v for v in double.violations)


def test_a_response_off_the_spec_is_caught(double, monkeypatch):
    original = ModelRegistryDouble.handle

    def broken(self, op, params, query, body):
        status, result = original(self, op, params, query, body)
        return status, {**result, "id": 12}  # ids are strings in the spec

    monkeypatch.setattr(ModelRegistryDouble, "handle", broken)
    call(double, "POST", "/registered_models", MODEL)
    assert any("response createRegisteredModel 201" in v and "id" in v
               for v in double.violations)


def test_paged_lists_follow_next_page_token(double):
    for n in range(5):
        call(double, "POST", "/registered_models", {"name": f"m{n}"})
    names, token = [], ""
    while True:
        query = f"?pageSize=2&orderBy=ID&sortOrder=DESC{'&nextPageToken=' + token if token else ''}"
        status, page = call(double, "GET", f"/registered_models{query}")
        names += [m["name"] for m in page["items"]]
        token = page["nextPageToken"]
        if not token:
            break
    assert names == ["m4", "m3", "m2", "m1", "m0"]


def test_the_vendored_spec_is_the_v0_3_4_api():
    spec = Spec()
    assert spec.raw["info"]["version"] == "v1alpha3"
    assert all(path.startswith("/api/model_registry/v1alpha3/") for path in spec.raw["paths"])
