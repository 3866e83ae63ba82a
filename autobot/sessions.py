"""Django's database sessions, read with one hand-written query, and the signed-in user read the
same way (SESSION_ENGINE = "autobot.sessions"; pages call `session_user`, autobot/pages.py).

Every page request reads its session row and its user row. Through the ORM each read is
`objects.get(...)`: a queryset cloned, filtered and compiled to SQL again on every request,
~0.4 ms of CPU for SQLite's ~0.02 ms of work (docs/performance.md, "Target 2: pages"). Here the
SQL of both reads is built once per connection from the models' metadata (table and column
names, the backend's quoting and value converters), as autobot/auth.py's token check does, so it
follows the models as the ORM would; values are always parameters. Both are run by
`autobot.dbread.read_one` (on SQLite, without the layers of Django's cursor that do nothing there).

Nothing else changes: it is `django.contrib.sessions.backends.db.SessionStore` (the same table,
encoding and signing) with `load` replaced, so a session written by either engine reads in the
other. Saving, `cycle_key` at login, `flush` at logout, `clear_expired` and the expiry filter
(`expire_date > now`, a session past it reads as empty and gets a new key) are Django's own.

`decode` remembers what it read: checking a row's signature and decoding it (`signing.loads`:
an HMAC, base64, JSON) cost ~20 µs a page, for the same stored text request after request.
The answer depends only on that text and the signing settings (secret, fallbacks, salt,
serializer, signing backend), all part of the key, so a row that changes, a rotated secret or
a corrupted row (never kept: an empty answer is not) is decoded afresh. Only sessions whose
values are all plain scalars are kept (a signed-in session: the user's id, backend and hash;
messages as text), and each read gets its own copy of the dict. The text comes from the
database, never from the client, which sends only the key.

The user row's converted values are kept by the row read (`_converted_rows`): a changed row is
converted afresh.

The user's session hash (an HMAC of the password field, compared with the session's) is kept by
the password field and SECRET_KEY, the two things it is made from (`_session_auth_hash`).
"""

from __future__ import annotations

import datetime
import decimal
import uuid

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from autobot.dbread import read_one
from autobot.memo import Memo, request_settings

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


_SCALARS = (str, int, float, bool, type(None))
_decoded = Memo(1024)  # stored texts remembered (one per live session)
_serializers = Memo(16)  # SESSION_SERIALIZER's dotted path → its class


class SessionStore(db.SessionStore):
    """Django's database session store; `load` reads the row with SQL compiled once, `decode`
    remembers what a stored text decoded to."""

    def __init__(self, session_key=None):
        """Django's (`SessionBase.__init__`, which `db.SessionStore`'s calls), but the serializer
        class is imported once per SESSION_SERIALIZER path (`_serializers`) instead of by
        `import_string` for every request, the session middleware's included, and the setting is
        read from `request_settings`: ~0.8 µs of a Bearer API call's ~1.2 µs to make a session it
        never reads. A dotted path names the same class every time."""
        self._session_key = session_key
        self.accessed = False
        self.modified = False
        path = request_settings.SESSION_SERIALIZER
        serializer = _serializers.get(path)
        if serializer is None:
            serializer = import_string(path)
            _serializers.put(path, serializer)
        self.serializer = serializer

    def decode(self, session_data):
        key = (session_data, self.key_salt, self.serializer, settings.SECRET_KEY,
               tuple(settings.SECRET_KEY_FALLBACKS), settings.SIGNING_BACKEND)
        kept = _decoded.get(key)
        if kept is not None:
            return dict(kept)
        data = super().decode(session_data)
        if data and all(type(value) in _SCALARS for value in data.values()):
            _decoded.put(key, dict(data))
        return data

    def load(self) -> dict:
        if not self.session_key:  # no cookie, or a key Django's validation already refused
            self._session_key = None
            return {}
        connection = connections[router.db_for_read(self.model)]
        sql = _session_sql(connection, self.model)
        row = read_one(connection, sql, [self.session_key, _now_param(connection)])
        if row is None:  # unknown or expired: as Django does, forget the key (a new one is made on save)
            self._session_key = None
            return {}
        return self.decode(row[0])

    # A session ends (sign-out, or a password change found it stale): its user's open sockets
    # check again now (autobot/revocation.py). The nudge goes after the row is gone: Django sends
    # `user_logged_out` before it flushes, when a check would still find the session valid.
    def flush(self) -> None:
        user_id = self.get(SESSION_KEY)
        super().flush()
        if user_id is not None:
            from autobot import revocation

            revocation.recheck_after_commit([user_id])

    async def aflush(self) -> None:
        user_id = await self.aget(SESSION_KEY)
        await super().aflush()
        if user_id is not None:
            from autobot import revocation

            await revocation.recheck_sockets([user_id])


def _now_param(connection):
    """`connection.ops.adapt_datetimefield_value(timezone.now())`, the expiry check's parameter.
    On SQLite with USE_TZ and the connection in UTC (no TIME_ZONE in DATABASES) that is the naive
    UTC time's text: Django's `make_naive` of a UTC time into UTC is the same time without its
    zone, and four Python calls (~10,000 instructions) fewer. Anything else is Django's."""
    if connection.vendor == "sqlite" and settings.USE_TZ and connection.timezone is datetime.UTC:
        return str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(timezone.now())


_session_sqls: dict[tuple, str] = {}


def _session_sql(connection, model) -> str:
    key = (connection.alias, connection.vendor, model._meta.db_table)
    if key not in _session_sqls:
        qn = connection.ops.quote_name
        meta = model._meta
        _session_sqls[key] = (
            f"SELECT {qn(meta.get_field('session_data').column)} FROM {qn(meta.db_table)} "
            f"WHERE {qn(meta.get_field('session_key').column)} = %s AND {qn(meta.get_field('expire_date').column)} > %s"
        )
    return _session_sqls[key]


class _UserQuery:
    """The user model's row by primary key, and its value converters, built once per connection."""

    def __init__(self, connection, model) -> None:
        qn = connection.ops.quote_name
        meta = model._meta
        self.model = model
        self.fields = list(meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.converters = []
        for index, field in enumerate(self.fields):
            col = field.get_col(meta.db_table)
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                self.converters.append((index, col, functions))
        columns = ", ".join(qn(field.column) for field in self.fields)
        where = f"FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s"
        self.sql = f"SELECT {columns} {where}"
        # SQLite: the stored values as they are (`+column` is SQLite's no-op operator: an expression
        # has no declared type, so the driver neither looks up nor runs a converter for it), alone
        # and beside the columns.
        stored = ", ".join(f"+{qn(field.column)}" for field in self.fields)
        self.stored_sql = f"SELECT {stored} {where}"
        self.both_sql = f"SELECT {columns}, {stored} {where}"

    def get(self, connection, pk):
        param = [self.model._meta.pk.get_db_prep_value(pk, connection)]
        if connection.vendor == "sqlite":
            return self._get_sqlite(connection, param)
        # Elsewhere (PostgreSQL) the driver gives dates aware, and a row with an aware date is not
        # a sound key (two equal instants in two zones): converted every time.
        row = read_one(connection, self.sql, param)
        return None if row is None else self._user(connection, self._convert(row, connection))

    def _get_sqlite(self, connection, param):
        """`get` on SQLite: the stored values read (without the driver's per-column type detection
        and its date parsing, ~20,000 instructions) and their converted values taken from
        `_converted_rows`; when not kept, the columns and the stored values are read in one
        statement (one snapshot: the values kept are those of that row) and converted. The values'
        types are part of the key (1 == 1.0 == True)."""
        stored = read_one(connection, self.stored_sql, param)
        if stored is None:
            return None
        values = _converted_rows.get((self.model, connection.alias, stored, tuple(map(type, stored))))
        if values is None:
            both = read_one(connection, self.both_sql, param)
            if both is None:
                return None
            count = len(self.fields)
            stored = both[count:]
            values = self._convert(both[:count], connection)
            if all(type(value) in _IMMUTABLE for value in values):
                _converted_rows.put((self.model, connection.alias, stored, tuple(map(type, stored))), values)
        return self._user(connection, values)

    def _convert(self, row, connection) -> tuple:
        values = list(row)
        for index, col, functions in self.converters:
            for convert in functions:
                values[index] = convert(values[index], col, connection)
        return tuple(values)

    def _user(self, connection, values: tuple):
        return self.model.from_db(connection.alias, self.attnames, list(values))  # a user object of its own


# The user row's values as the converters made them (dates made aware, booleans): the same raw row
# converts to the same values (the converters are functions of the value, the column and the
# connection's settings; a changed setting empties the table), ~50,000 instructions a page for the
# same answer. Only rows whose converted values are all immutable are kept, so the objects shared
# between requests' users cannot be changed through one of them.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, datetime.datetime, datetime.date, datetime.time,
                        datetime.timedelta, decimal.Decimal, uuid.UUID})
_converted_rows = Memo(1024, settings=True)


_user_queries: dict[tuple, _UserQuery] = {}


def _model_backend_user(user_id):
    """`ModelBackend().get_user(user_id)`, with the row read by `_UserQuery`."""
    model = get_user_model()
    connection = connections[router.db_for_read(model)]
    key = (connection.alias, connection.vendor, settings.AUTH_USER_MODEL)
    if key not in _user_queries:
        _user_queries[key] = _UserQuery(connection, model)
    user = _user_queries[key].get(connection, user_id)
    return user if user is not None and ModelBackend().user_can_authenticate(user) else None


_auth_hashes = Memo(1024)


def _session_auth_hash(user) -> str:
    """`user.get_session_auth_hash()`: Django's HMAC of the password field with SECRET_KEY, kept
    by both (~50,000 instructions a page, for the same answer request after request). A changed
    password or a rotated secret is a new key, so a session's check against it fails as Django's
    does. A user model that makes its own hash is asked every time."""
    cls = type(user)
    if (cls.get_session_auth_hash is not AbstractBaseUser.get_session_auth_hash
            or cls._get_session_auth_hash is not AbstractBaseUser._get_session_auth_hash):
        return user.get_session_auth_hash()
    key = (user.password, settings.SECRET_KEY)
    known = _auth_hashes.get(key)
    if known is None:
        known = user.get_session_auth_hash()
        _auth_hashes.put(key, known)
    return known


def session_user(request):
    """`django.contrib.auth.get_user(request)`: the session's user, or AnonymousUser. Sync (it
    reads the database); call it in a lane job.

    The same steps as Django's: the backend named in the session must still be configured; the
    session's password hash must match the user's (a password change signs other sessions out:
    the session is flushed), or one made with a fallback secret (the key is cycled and the hash
    renewed). Only the read of the user row differs, for the stock ModelBackend; any other
    backend is asked as Django would."""
    from django.contrib.auth.models import AnonymousUser

    session = request.session
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    if backend_path != MODEL_BACKEND:
        return auth.get_user(request)
    user = _model_backend_user(user_id)
    if user is None:
        return AnonymousUser()
    session_hash = session.get(HASH_SESSION_KEY)
    session_auth_hash = _session_auth_hash(user)
    if session_hash and constant_time_compare(session_hash, session_auth_hash):
        return user
    if session_hash and any(constant_time_compare(session_hash, fallback)
                            for fallback in user.get_session_auth_fallback_hash()):
        session.cycle_key()
        session[HASH_SESSION_KEY] = session_auth_hash
        return user
    session.flush()
    return AnonymousUser()
