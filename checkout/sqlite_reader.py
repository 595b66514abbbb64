"""One-row SQLite reads that keep the interpreter's lock: for the direct reads in front of
Flask (db.DirectRead), on each thread's own connection (db.ThreadReaders).

Python's `sqlite3` lets go of the interpreter's lock around each call into SQLite, twice
for a one-row read, so that other threads may run while SQLite works. For a read by primary
key that work is a few microseconds from memory, while taking the lock back behind fifteen
busy request threads costs far more: under load, a page's first view spent more time
switching threads than reading (the bench's first views on SQLite). Here the same SQLite
library is called through ctypes' `PyDLL`, which keeps the lock during each call: the read
runs to its end as one step of the thread's work.

What is done with the lock held, and what may wait:
- The connection is opened read-only, with no busy timeout: a read that would wait for a
  lock another connection holds (a writer out of WAL mode or in exclusive locking mode,
  another connection recovering the log after a crash) fails at once with `Busy`, and the
  caller reads through the driver instead, which waits without the lock.
- SQLite's own steps that do not go through the busy timeout still run with the lock held:
  the log's recovery when this reader is the first to open the database after a crash (a
  few milliseconds per ten megabytes of log, once), pages read from the disk rather than
  the file system's cache, and SQLite's retries while it starts a read in WAL mode and the
  log's read marks are being taken by others at that very moment (resolved in microseconds
  between SQLite connections, which hold those locks only while they move a mark; it
  sleeps up to about ten seconds before failing only if something outside SQLite holds
  them).

The library is the very one the `sqlite3` module calls, found through that module's own
handle and proved so before it is used (`library`): a connection of the driver takes a
lock that only the same copy of SQLite can see, and a reader of this library must meet it.
Two copies of SQLite in one process would each keep POSIX locks on the same files without
knowing of the other's, and closing a file in one drops the other's locks; one copy shares
them. Where the proof fails, `available()` is False and the driver reads as before.

A reader belongs to one thread; `close` may come from another (an engine disposed), so each
read and the close take the reader's own lock: a statement is never finalized under a read.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sqlite3
import tempfile
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
    # As bytes up to its first NUL: the whole text but where it holds one (`_row`).
    "sqlite3_column_text": ([_pointer, ctypes.c_int], ctypes.c_char_p),
    "sqlite3_column_bytes": ([_pointer, ctypes.c_int], ctypes.c_int),
}


class Busy(sqlite3.OperationalError):
    """The read would have had to wait for a lock: read through the driver instead."""


# SQLite's primary result codes as the `sqlite3` module raises them; any other is its
# DatabaseError. Busy and locked (with every extended code of theirs) are `Busy`.
_ERRORS: dict[int, type[Exception]] = {
    2: sqlite3.InternalError, 12: sqlite3.InternalError,  # INTERNAL, NOTFOUND
    7: MemoryError,  # NOMEM
    **dict.fromkeys((1, 3, 4, 8, 9, 10, 13, 14, 15, 16, 17), sqlite3.OperationalError),
    18: sqlite3.DataError,  # TOOBIG
    19: sqlite3.IntegrityError, 20: sqlite3.IntegrityError,  # CONSTRAINT, MISMATCH
    21: sqlite3.InterfaceError, 25: sqlite3.InterfaceError,  # MISUSE, RANGE
}


def error(code: int, message: str) -> Exception:
    """The exception for SQLite's (extended) result `code`."""
    if code & 0xFF in (_BUSY, _LOCKED):
        return Busy(message)
    return _ERRORS.get(code & 0xFF, sqlite3.DatabaseError)(message)


def _load() -> Any:
    """The SQLite library the `sqlite3` module is linked to, its functions keeping the
    interpreter's lock; None where there is none to find."""
    try:
        import _sqlite3  # the driver's extension: its handle finds the library it is linked to

        found = typed(ctypes.PyDLL(_sqlite3.__file__))
        version = found.sqlite3_libversion()
    except (ImportError, OSError, AttributeError):
        return None
    if version is None or version.decode() != sqlite3.sqlite_version:
        return None
    return found


def typed(loaded: Any) -> Any:
    """A loaded SQLite library with the types of the functions a reader calls."""
    for name, (arguments, result) in _SIGNATURES.items():
        function = getattr(loaded, name)
        function.argtypes, function.restype = arguments, result
    return loaded


def shares_the_drivers_locks(candidate: Any) -> bool:
    """Whether `candidate` is the driver's own copy of SQLite: a reader of it must find the
    exclusive lock a driver's connection holds. POSIX locks never keep a process from its
    own files, so only SQLite's bookkeeping in the same copy sees that lock. False too where
    the proof cannot be made (no temporary folder to make it in)."""
    try:
        with tempfile.TemporaryDirectory(prefix="checkout-sqlite-") as folder:
            path = os.path.join(folder, "probe.db")
            driver = sqlite3.connect(path, isolation_level=None)
            try:
                driver.execute("CREATE TABLE probe (x)")
                driver.execute("BEGIN EXCLUSIVE")
                reader = Reader(path, candidate)
                try:
                    reader.first("SELECT count(*) FROM probe", [])
                except Busy:
                    return True
                finally:
                    reader.close()
                return False  # it read beside an exclusive lock: another copy
            finally:
                driver.close()
    except (OSError, sqlite3.Error):
        return False


@functools.cache
def library() -> Any:
    """The driver's own SQLite library, proved so, or None; found once per process."""
    found = _load()
    return found if found is not None and shares_the_drivers_locks(found) else None


def available() -> bool:
    return library() is not None


class Reader:
    """A read-only connection to one SQLite file, for one thread's one-row reads."""

    def __init__(self, path: str, lib: Any = None) -> None:
        """`lib`: the library (`library()` unless a test names another copy)."""
        self._lib = library() if lib is None else lib
        if self._lib is None:
            raise RuntimeError("no SQLite library to call while holding the lock")
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
            raise error(code, message)
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
            text = ctypes.create_string_buffer(sql.encode())
            statement, tail = _pointer(), _pointer()
            code = self._lib.sqlite3_prepare_v3(self._db, text, -1, _PREPARE_PERSISTENT,
                                                ctypes.byref(statement), ctypes.byref(tail))
            if code != _OK:
                self._fail(code)
            rest = text.value[(tail.value or ctypes.addressof(text)) - ctypes.addressof(text):]
            if not statement.value or rest.strip():
                self._lib.sqlite3_finalize(statement)  # NULL for none: a no-op then
                raise sqlite3.ProgrammingError(
                    "You can only execute one statement at a time." if statement.value
                    else "not a statement")
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
        kind_of, size_of = lib.sqlite3_column_type, lib.sqlite3_column_bytes
        values: list[Any] = []
        for at in range(lib.sqlite3_column_count(statement)):
            kind = kind_of(statement, at)
            if kind == _NULL:
                values.append(None)
            elif kind == _INTEGER:
                values.append(lib.sqlite3_column_int64(statement, at))
            elif kind == _FLOAT:
                values.append(lib.sqlite3_column_double(statement, at))
            elif kind == _TEXT:
                # Its bytes before its length (SQLite's rule): the text up to a NUL, then
                # read again whole if the length says it held one.
                data = lib.sqlite3_column_text(statement, at)
                if data is None:  # SQLite had no memory to give it as text
                    raise MemoryError("SQLite could not read a text column")
                size = size_of(statement, at)
                if len(data) != size:
                    data = ctypes.string_at(lib.sqlite3_column_blob(statement, at), size)
                try:
                    values.append(data.decode())
                except UnicodeDecodeError as exc:
                    raise sqlite3.OperationalError(
                        f"Could not decode to UTF-8 column {at}") from exc
            else:
                data = lib.sqlite3_column_blob(statement, at)
                size = size_of(statement, at)
                values.append(ctypes.string_at(data, size) if size else b"")
        return tuple(values)

    def _message(self) -> str:
        found = self._lib.sqlite3_errmsg(self._db)
        return found.decode(errors="replace") if found else "SQLite error"

    def _fail(self, code: int) -> NoReturn:
        raise error(code, self._message())
