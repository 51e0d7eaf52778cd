"""Pickling errors name the culprit and where it sits; exceptions travel with tracebacks."""

from __future__ import annotations

import threading

import pytest

from poolwise import errors, transport


class Holder:
    def __init__(self) -> None:
        self.name = "x"
        self.lock = threading.Lock()


def test_find_unpicklable_names_the_innermost_path() -> None:
    args = (1, {"lock": threading.Lock(), "ok": 2})
    error = transport.find_unpicklable(args, "args")
    assert error is not None
    assert (error.where, error.type_name) == ("args[1]['lock']", "_thread.lock")


def test_find_unpicklable_follows_attributes() -> None:
    error = transport.find_unpicklable([Holder()], "input #3 args")
    assert error is not None
    assert error.where == "input #3 args[0].lock"


def test_find_unpicklable_returns_none_for_picklable() -> None:
    assert transport.find_unpicklable({"a": [1, 2.0, "x"]}, "args") is None


def test_dumps_or_raise_raises_not_picklable_from_the_cause() -> None:
    with pytest.raises(errors.NotPicklable, match=r"fn\.lock: _thread.lock") as info:
        transport.dumps_or_raise(Holder(), "fn")
    assert info.value.__cause__ is not None


def test_lambdas_travel_by_value() -> None:
    offset = 3
    fn = transport.loads(transport.dumps(lambda x: x + offset))
    assert fn(1) == 4


def _raise() -> None:
    raise KeyError("missing")


def test_exception_comes_back_with_the_remote_traceback() -> None:
    try:
        _raise()
    except KeyError as exc:
        payload = transport.pack_exception(exc)
    rebuilt = transport.load_exception(payload)
    assert isinstance(rebuilt, KeyError)
    assert isinstance(rebuilt.__cause__, errors.RemoteTraceback)
    assert "_raise" in str(rebuilt.__cause__)


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot travel")
        self.lock = threading.Lock()


def test_exception_that_cannot_pickle_arrives_as_remote_error() -> None:
    try:
        raise Unpicklable()
    except Unpicklable as exc:
        payload = transport.pack_exception(exc)
    rebuilt = transport.load_exception(payload)
    assert isinstance(rebuilt, errors.RemoteError)
    assert rebuilt.type_name.endswith("Unpicklable")
    assert rebuilt.text == "cannot travel"
    assert "Traceback" in rebuilt.traceback_text
