"""Song Service: every row of the contract, against the real service and database.

The contract tests run twice, directly against the service and through the gateway (the
`song` fixture below, parametrised by conftest's `route`); the actuator tests are direct
only (the gateway does not route /actuator)."""
import concurrent.futures
import json

import pytest
import requests

from conftest import via

ERROR_KEYS = {"errorMessage", "errorCode"}


def song_body(i, **over):
    b = {"id": i, "name": "We are the champions", "artist": "Queen", "album": "News of the world",
         "duration": "02:59", "year": "1977"}
    b.update(over)
    return b


def assert_error(r, status, message=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == ERROR_KEYS, body
    assert body["errorCode"] == str(status)
    if message is not None:
        assert body["errorMessage"] == message


def assert_validation(r, details):
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert list(body) == ["errorMessage", "details", "errorCode"]
    assert body["errorMessage"] == "Validation error"
    assert body["errorCode"] == "400"
    assert body["details"] == details


@pytest.fixture(scope="module")
def song_direct(services):
    return services["song"].ensure()


@pytest.fixture
def song(song_direct, route):
    """The Song Service, directly or through the gateway."""
    return via(song_direct, route)


def test_create_get_roundtrip(song, new_id):
    i = new_id()
    r = song.post("/songs", json=song_body(i))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"id": i}
    g = song.get(f"/songs/{i}")
    assert g.status_code == 200
    assert g.headers["Content-Type"] == "application/json"
    assert g.json() == song_body(i)
    assert list(g.json()) == ["id", "name", "artist", "album", "duration", "year"]
    assert isinstance(g.json()["id"], int)


def test_duplicate_is_409(song, new_id):
    i = new_id()
    assert song.post("/songs", json=song_body(i)).status_code == 200
    assert_error(song.post("/songs", json=song_body(i, name="Other")), 409,
                 f"Metadata for resource ID={i} already exists")
    assert song.get(f"/songs/{i}").json()["name"] == "We are the champions"


def test_racing_posts_one_wins(song, new_id):
    i = new_id()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: song.post("/songs", json=song_body(i)).status_code, range(16)))
    assert sorted(codes) == [200] + [409] * 15


def test_missing_fields_all_reported(song):
    assert_validation(song.post("/songs", json={}), {
        "id": "ID is required", "name": "Song name is required", "artist": "Artist name is required",
        "album": "Album name is required", "duration": "Duration is required", "year": "Year is required"})


def test_nulls_count_as_missing(song):
    body = {k: None for k in ("id", "name", "artist", "album", "duration", "year")}
    r = song.post("/songs", json=body)
    assert r.json()["details"]["year"] == "Year is required"
    assert len(r.json()["details"]) == 6


@pytest.mark.parametrize("field,value,message", [
    ("name", "", "Song name must be between 1 and 100 characters"),
    ("name", "x" * 101, "Song name must be between 1 and 100 characters"),
    ("artist", "é" * 101, "Artist name must be between 1 and 100 characters"),
    ("album", "日" * 101, "Album name must be between 1 and 100 characters"),
    ("duration", "02:77", "Duration must be in mm:ss format with leading zeros"),
    ("duration", "0299", "Duration must be in mm:ss format with leading zeros"),
    ("duration", "35", "Duration must be in mm:ss format with leading zeros"),
    ("duration", "2:59", "Duration must be in mm:ss format with leading zeros"),
    ("duration", "00:60", "Duration must be in mm:ss format with leading zeros"),
    ("year", "1899", "Year must be between 1900 and 2099"),
    ("year", "2100", "Year must be between 1900 and 2099"),
    ("year", "01977", "Year must be between 1900 and 2099"),
    ("year", "1", "Year must be between 1900 and 2099"),
    ("id", 0, "ID must be a positive integer"),
    ("id", -5, "ID must be a positive integer"),
    ("id", 2147483648, "ID must be a positive integer"),
    # wrong JSON types in each field
    ("id", "1", "ID must be a positive integer"),
    ("id", 1.5, "ID must be a positive integer"),
    ("name", 123, "Song name must be between 1 and 100 characters"),
    ("artist", ["Queen"], "Artist name must be between 1 and 100 characters"),
    ("album", {"a": 1}, "Album name must be between 1 and 100 characters"),
    ("duration", 179, "Duration must be in mm:ss format with leading zeros"),
    ("year", 1977, "Year must be between 1900 and 2099"),
    ("year", True, "Year must be between 1900 and 2099"),
])
def test_invalid_field(song, new_id, field, value, message):
    i = new_id()
    r = song.post("/songs", json=song_body(i, **{field: value}))
    assert_validation(r, {field: message})
    if field != "id":
        assert_error(song.get(f"/songs/{i}"), 404)  # nothing was stored


@pytest.mark.parametrize("field,value", [
    ("name", "x" * 100), ("artist", "é" * 100), ("album", "🎵" * 100), ("name", "a"),
    ("year", "1900"), ("year", "2099"), ("duration", "00:59"), ("duration", "01:00"), ("duration", "99:59"),
])
def test_boundary_values_accepted(song, new_id, field, value):
    i = new_id()
    r = song.post("/songs", json=song_body(i, **{field: value}))
    assert r.status_code == 200, r.text
    assert song.get(f"/songs/{i}").json()[field] == value


def test_several_invalid_fields_at_once(song, new_id):
    r = song.post("/songs", json=song_body(new_id(), duration="1:1", year="1800", name=""))
    assert_validation(r, {"name": "Song name must be between 1 and 100 characters",
                          "duration": "Duration must be in mm:ss format with leading zeros",
                          "year": "Year must be between 1900 and 2099"})


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"id": 1,}', b"\xff\xfe", b'{"name": "\\ud800"}'])
def test_malformed_json_is_400(song, raw):
    r = song.post("/songs", data=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("raw", [b"[]", b"5", b'"text"', b"null"])
def test_non_object_json_is_400(song, raw):
    r = song.post("/songs", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errorCode"] == "400"


def test_wrong_content_type_is_415(song, new_id):
    r = song.post("/songs", data=json.dumps(song_body(new_id())), headers={"Content-Type": "text/plain"})
    assert_error(r, 415)


def test_body_too_large_is_413(song, new_id):
    r = song.post("/songs", json=song_body(new_id(), name="x" * 100_000))
    assert_error(r, 413)


@pytest.mark.parametrize("raw", ["ABC", "1.1", "-1", "0", "2147483648", "99999999999", "%20"])
def test_get_invalid_id(song, raw):
    r = song.get(f"/songs/{raw}")
    shown = " " if raw == "%20" else raw
    assert_error(r, 400, f"Invalid value '{shown}' for ID. Must be a positive integer")


def test_get_very_long_invalid_id_echoed_whole(song):
    raw = "9" * 3000
    assert_error(song.get(f"/songs/{raw}"), 400, f"Invalid value '{raw}' for ID. Must be a positive integer")


def test_get_empty_id(song):
    assert_error(song.get("/songs/"), 400, "Invalid value '' for ID. Must be a positive integer")


def test_get_missing_is_404(song):
    assert_error(song.get("/songs/2147483647"), 404, "Song metadata for ID=2147483647 not found")


def test_delete_in_request_order_ignoring_unknown(song, new_id):
    a, b, c = new_id(), new_id(), new_id()
    for i in (a, b):
        assert song.post("/songs", json=song_body(i)).status_code == 200
    r = song.delete(f"/songs?id={b},{c},{a},{b}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"ids": [b, a]}
    assert_error(song.get(f"/songs/{a}"), 404)
    assert song.delete(f"/songs?id={a}").json() == {"ids": []}


def test_delete_csv_rules(song):
    long_csv = ",".join(["1234567"] * 26)  # 26*8-1 = 207 characters
    long_csv += "1"
    assert len(long_csv) == 208
    assert_error(song.delete(f"/songs?id={long_csv}"), 400,
                 "CSV string is too long: received 208 characters, maximum allowed is 200")
    assert_error(song.delete("/songs?id=1,V,3"), 400, "Invalid ID format: 'V'. Only positive integers are allowed")
    assert_error(song.delete("/songs?id=1,-2"), 400, "Invalid ID format: '-2'. Only positive integers are allowed")
    assert_error(song.delete("/songs?id=2147483648"), 400)
    assert_error(song.delete("/songs"), 400)
    assert_error(song.delete("/songs?id="), 400)


def test_unknown_route_and_method(song):
    assert_error(song.get("/nothing-here"), 404)
    assert_error(song.delete("/songs/1"), 405)
    assert_error(requests.put(song.url + "/songs", json={}, timeout=5), 405)


def test_health_reports_database(song_direct):
    r = song_direct.get("/actuator/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["status"] == "UP"
    assert body["components"]["db"]["status"] == "UP"


def test_prometheus_counts_requests(song_direct):
    song_direct.get("/songs/1")
    text = song_direct.get("/actuator/prometheus").text
    assert 'http_server_requests_seconds_count{method="GET",uri="/songs/{id}"' in text


def test_request_id_passed_through(song):
    r = song.get("/songs/1", headers={"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
