"""One-row SQLite reads that keep the interpreter's lock: for the direct reads in front of
Flask (db.DirectRead), on each thread's own connection (db.ThreadReaders).

Python's `sqlite3` lets go of the interpreter's lock around each call into SQLite, twice
for a one-row read, so that other threads may run while SQLite works. For a read by primary
key that work is a few microseconds from memory, while taking the lock back behind fifteen
busy request threads costs far more: under load, a page's first view spent more time
switching threads than reading (the bench's first views on SQLite). Here the same SQLite
library is called through ctypes' `PyDLL`, which keeps the lock during each call: the read
runs to its end as one step of the thread's work.

Only what cannot wait long is done with the lock held:
- the connection is opened read-only, with no busy timeout: a read that would have to wait
  (a database locked for recovery, a writer in exclusive mode) fails at once with `Busy`,
  and the caller reads through the driver instead, which waits without the lock;
- it reads only what the database's pages hold, from the file system's cache in practice.

The library is the very one the `sqlite3` module calls (found through that module's own
handle). Two copies of SQLite in one process would each keep POSIX locks on the same files
without knowing of the other's, and closing a file in one drops the other's locks; one copy
shares them. Where that library cannot be found so, `available()` is False and the driver
reads as before.

A reader belongs to one thread; `close` may come from another (an engine disposed), so each
read and the close take the reader's own lock: a statement is never finalized under a read.
"""

from __future__ import annotations

import ctypes
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

# SQLite's result codes and flags (sqlite3.h).
_OK, _BUSY, _LOCKED, _ROW, _DONE = 0, 5, 6, 100, 101
_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL = 1, 2, 3, 4, 5
_OPEN_READONLY, _OPEN_NOMUTEX = 0x00000001, 0x00008000
_PREPARE_PERSISTENT = 0x01
_TRANSIENT = ctypes.c_void_p(-1)  # SQLite copies a bound value before the call returns
_INT64 = (-(2**63), 2**63 - 1)

_pointer = ctypes.c_void_p
# name: (argument types, result type)
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "sqlite3_libversion": ([], ctypes.c_char_p),
    "sqlite3_open_v2": ([ctypes.c_char_p, ctypes.POINTER(_pointer), ctypes.c_int,
                         ctypes.c_char_p], ctypes.c_int),
    "sqlite3_close_v2": ([_pointer], ctypes.c_int),
    "sqlite3_extended_result_codes": ([_pointer, ctypes.c_int], ctypes.c_int),
    "sqlite3_errmsg": ([_pointer], ctypes.c_char_p),
    "sqlite3_prepare_v3": ([_pointer, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                            ctypes.POINTER(_pointer), ctypes.POINTER(_pointer)],
                           ctypes.c_int),
    "sqlite3_finalize": ([_pointer], ctypes.c_int),
    "sqlite3_reset": ([_pointer], ctypes.c_int),
    "sqlite3_step": ([_pointer], ctypes.c_int),
    "sqlite3_bind_parameter_count": ([_pointer], ctypes.c_int),
    "sqlite3_bind_null": ([_pointer, ctypes.c_int], ctypes.c_int),
    "sqlite3_bind_int64": ([_pointer, ctypes.c_int, ctypes.c_int64], ctypes.c_int),
    "sqlite3_bind_double": ([_pointer, ctypes.c_int, ctypes.c_double], ctypes.c_int),
    "sqlite3_bind_text": ([_pointer, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, _pointer],
                          ctypes.c_int),
    "sqlite3_bind_blob": ([_pointer, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, _pointer],
                          ctypes.c_int),
    "sqlite3_column_count": ([_pointer], ctypes.c_int),
    "sqlite3_column_type": ([_pointer, ctypes.c_int], ctypes.c_int),
    "sqlite3_column_int64": ([_pointer, ctypes.c_int], ctypes.c_int64),
    "sqlite3_column_double": ([_pointer, ctypes.c_int], ctypes.c_double),
    "sqlite3_column_blob": ([_pointer, ctypes.c_int], _pointer),
    "sqlite3_column_text": ([_pointer, ctypes.c_int], _pointer),
    "sqlite3_column_bytes": ([_pointer, ctypes.c_int], ctypes.c_int),
}


class Busy(sqlite3.OperationalError):
    """The read would have had to wait for a lock: read through the driver instead."""


def _load() -> Any:
    """The SQLite library the `sqlite3` module calls, its functions keeping the interpreter's
    lock; None where it cannot be told for sure."""
    try:
        import _sqlite3  # the driver's extension: its handle finds the library it is linked to

        library = ctypes.PyDLL(_sqlite3.__file__)
        for name, (arguments, result) in _SIGNATURES.items():
            function = getattr(library, name)
            function.argtypes, function.restype = arguments, result
        version = library.sqlite3_libversion()
    except (ImportError, OSError, AttributeError):
        return None
    if version is None or version.decode() != sqlite3.sqlite_version:
        return None
    return library


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


class Reader:
    """A read-only connection to one SQLite file, for one thread's one-row reads."""

    def __init__(self, path: str) -> None:
        if _LIBRARY is None:
            raise RuntimeError("no SQLite library to call while holding the lock")
        self._lib = _LIBRARY
        self._lock = threading.Lock()
        # Prepared once per connection: the statement and how many parameters its text has.
        # (Its columns are counted at each read: SQLite prepares it again after a schema
        # change, and `*` may then name more.)
        self._statements: dict[str, tuple[_pointer, int]] = {}
        handle = _pointer()
        code = self._lib.sqlite3_open_v2(path.encode(), ctypes.byref(handle),
                                         _OPEN_READONLY | _OPEN_NOMUTEX, None)
        self._db: _pointer | None = handle
        if code != _OK:
            message = self._message()
            self._lib.sqlite3_close_v2(handle)  # SQLite hands out a handle even on failure
            self._db = None
            raise sqlite3.OperationalError(message)
        self._lib.sqlite3_extended_result_codes(handle, 1)

    @property
    def closed(self) -> bool:
        return self._db is None

    def first(self, sql: str, arguments: Sequence[Any]) -> tuple[Any, ...] | None:
        """The statement's first row, its values as the `sqlite3` module gives them (int,
        float, str, bytes, None), or None. Errors are the driver's classes; `Busy` where
        a lock is taken."""
        with self._lock:
            if self._db is None:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            statement, parameters = self._statement(sql)
            try:
                self._bind(statement, parameters, arguments)
                code = self._lib.sqlite3_step(statement)
                if code == _DONE:
                    return None
                if code != _ROW:
                    self._fail(code)
                return self._row(statement)
            finally:
                # Ends the read (and its snapshot): nothing is held between reads.
                self._lib.sqlite3_reset(statement)

    def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            for statement, _parameters in self._statements.values():
                self._lib.sqlite3_finalize(statement)
            self._statements.clear()
            self._lib.sqlite3_close_v2(self._db)
            self._db = None

    # ------------------------------------------------------------ one read's steps

    def _statement(self, sql: str) -> tuple[_pointer, int]:
        found = self._statements.get(sql)
        if found is None:
            statement = _pointer()
            code = self._lib.sqlite3_prepare_v3(self._db, sql.encode(), -1, _PREPARE_PERSISTENT,
                                                ctypes.byref(statement), None)
            if code != _OK:
                self._fail(code)
            if not statement.value:  # only a comment or blanks: nothing to read
                raise sqlite3.ProgrammingError("not a statement")
            found = self._statements[sql] = (
                statement, self._lib.sqlite3_bind_parameter_count(statement))
        return found

    def _bind(self, statement: _pointer, expected: int, arguments: Sequence[Any]) -> None:
        lib = self._lib
        if expected != len(arguments):
            raise sqlite3.ProgrammingError(
                f"Incorrect number of bindings supplied. The current statement uses "
                f"{expected}, and there are {len(arguments)} supplied.")
        for at, value in enumerate(arguments, start=1):
            if value is None:
                code = lib.sqlite3_bind_null(statement, at)
            elif isinstance(value, int):  # bool too, as the driver binds it: 0 or 1
                if not _INT64[0] <= value <= _INT64[1]:
                    raise OverflowError("Python int too large to convert to SQLite INTEGER")
                code = lib.sqlite3_bind_int64(statement, at, value)
            elif isinstance(value, float):
                code = lib.sqlite3_bind_double(statement, at, value)
            elif isinstance(value, str):
                data = value.encode()
                code = lib.sqlite3_bind_text(statement, at, data, len(data), _TRANSIENT)
            elif isinstance(value, bytes | bytearray | memoryview):
                data = bytes(value)
                code = lib.sqlite3_bind_blob(statement, at, data, len(data), _TRANSIENT)
            else:
                raise sqlite3.ProgrammingError(
                    f"Error binding parameter {at}: type {type(value).__name__!r} is not "
                    "supported")
            if code != _OK:
                self._fail(code)

    def _row(self, statement: _pointer) -> tuple[Any, ...]:
        lib = self._lib
        values: list[Any] = []
        for at in range(lib.sqlite3_column_count(statement)):
            kind = lib.sqlite3_column_type(statement, at)
            if kind == _NULL:
                values.append(None)
            elif kind == _INTEGER:
                values.append(lib.sqlite3_column_int64(statement, at))
            elif kind == _FLOAT:
                values.append(lib.sqlite3_column_double(statement, at))
            elif kind == _TEXT:
                text = lib.sqlite3_column_text(statement, at)  # before its length: SQLite's rule
                size = lib.sqlite3_column_bytes(statement, at)
                try:
                    values.append(ctypes.string_at(text, size).decode() if size else "")
                except UnicodeDecodeError as exc:
                    raise sqlite3.OperationalError(
                        f"Could not decode to UTF-8 column {at}") from exc
            else:
                data = lib.sqlite3_column_blob(statement, at)
                size = lib.sqlite3_column_bytes(statement, at)
                values.append(ctypes.string_at(data, size) if size else b"")
        return tuple(values)

    def _message(self) -> str:
        found = self._lib.sqlite3_errmsg(self._db)
        return found.decode(errors="replace") if found else "SQLite error"

    def _fail(self, code: int) -> NoReturn:
        message = self._message()
        if code & 0xFF in (_BUSY, _LOCKED):
            raise Busy(message)
        raise sqlite3.OperationalError(message)
