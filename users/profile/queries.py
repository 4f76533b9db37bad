"""The SQL of a profile's reads and writes without the ORM (the edge's, on users/loop_db.py, and
the one write path of users/accounts/profile.py), written by Django.

The reads are the ORM's own querysets compiled to SQL, so that their columns, table and filters
(`User.objects.alive()`) are the model's and the serializers'; the lean update's UPDATE names its
columns from the model's `_meta`. A field added to a serializer is read and written here without
a word changed in this module.
"""
import functools
from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Lookup
from django.db.models.expressions import RawSQL
from psycopg import sql

from users.models import User
from users.profile.serializers import UserPrivateSerializer, UserPublicSerializer

# Every column an answer of the edge needs: its serializer's fields, and `updated_at`, which its
# ETag covers (users/profile/etags.py).
PUBLIC_ROW = (*UserPublicSerializer.Meta.fields, "updated_at")
PRIVATE_ROW = (*UserPrivateSerializer.Meta.fields, "updated_at")


@functools.cache
def select_by_ids(fields: tuple[str, ...], *, alive: bool) -> str:
    """The SQL of `User.objects[.alive()].filter(pk__any=...).values(*fields)`: its one parameter
    is a list of ids (`WHERE id = ANY(%s)`, one statement whatever their number). The rows come
    in no order."""
    queryset = User.objects.alive() if alive else User.objects.all()
    return one_parameter(queryset.filter(pk__any=[1]).values(*fields))


def one_parameter(queryset: Any) -> str:
    """`queryset`'s SQL, whose one parameter is the id (or ids) it was filtered on (raises if it
    has others: a statement sent with the id alone would take them for it)."""
    query, params = queryset.query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
    if len(params) != 1:
        raise ValueError(f"expected the id as the query's only parameter: {params!r}")
    return query


class _Any(Lookup):
    """`field = ANY(%s)`, the list passed as one array: one statement text for any number of ids
    (`__in` writes one placeholder per value)."""

    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:
        return "%s", [[self.lhs.output_field.get_db_prep_value(item, connection) for item in value]]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        array = f"{self.lhs.output_field.cast_db_type(connection)}[]"  # not the driver's guess (int2[] for small ids)
        return f"{lhs} = ANY({rhs}::{array})", [*lhs_params, *rhs_params]


User._meta.pk.register_lookup(_Any)


def user_from_row(fields: tuple[str, ...], row: tuple[Any, ...]) -> User:
    """A model instance from a row of these queries (`fields` in the order they were asked for),
    as the ORM builds one (`Model.from_db`): the fields not read are deferred, never silently
    given their defaults."""
    values = dict(zip(fields, row))
    names = [field.attname for field in User._meta.concrete_fields if field.attname in values]
    return User.from_db(DEFAULT_DB_ALIAS, names, [values[name] for name in names])


# PostgreSQL's version of a row: any write of it, by anyone and through any path, makes a new one.
VERSION = "version"


@functools.cache
def select_versioned(fields: tuple[str, ...], *, locked: bool = False) -> str:
    """The SQL of `User.objects.filter(pk__any=...).values(*fields)` and each row's version (`xmin`)
    after them, as text: like `select_by_ids`, its one parameter is a list of ids (the edge reads the
    rows of several PATCHes of a turn in one go: `users.cache.loader`); `locked`: FOR UPDATE (it
    holds inside a transaction)."""
    version = RawSQL(f"{connection.ops.quote_name(User._meta.db_table)}.xmin::text", ())
    query = one_parameter(User.objects.filter(pk__any=[1]).annotate(**{VERSION: version}).values(*fields, VERSION))
    return f"{query} FOR UPDATE" if locked else query  # select_for_update() compiles only inside a transaction


@functools.cache
def update_versioned(fields: tuple[str, ...], returning: tuple[str, ...], *, events: int = 0,
                     may_log_in: bool = True) -> str:
    """UPDATE the user's `fields` and `updated_at` only while its row is the version read
    (`select_versioned`): the parameters are the fields' values, updated_at, the id and the version.
    RETURNING `returning`, and the row's `user_id` and `sequence` after adding `events` to its event
    sequence (for `events.recording`); with `may_log_in`, only while the row is one that may log in
    (`User.objects.may_log_in()`, compiled)."""
    changes = [sql.SQL("{} = %s").format(_column(name)) for name in (*fields, "updated_at")]
    sequence = _column("event_sequence")
    if events:
        changes.append(sql.SQL("{} = {} + {}").format(sequence, sequence, sql.Literal(events)))
    conditions = [sql.SQL("{} = %s").format(_column("id")), sql.SQL("xmin = %s::xid")]
    if may_log_in:
        query = User.objects.may_log_in().query
        clause, params = query.get_compiler(DEFAULT_DB_ALIAS).compile(query.where)
        if params:
            raise ValueError(f"expected a constant clause: {params!r}")
        conditions.append(sql.SQL(clause))
    return sql.SQL(
        "UPDATE {table} SET {changes} WHERE {conditions} "
        "RETURNING {id} AS user_id, {sequence} AS sequence, {returning}"
    ).format(
        table=sql.Identifier(User._meta.db_table),
        changes=sql.SQL(", ").join(changes),
        conditions=sql.SQL(" AND ").join(conditions),
        id=_column("id"), sequence=sequence, returning=_columns(returning),
    ).as_string(None)


def _column(name: str) -> sql.Identifier:
    return sql.Identifier(User._meta.get_field(name).column)


def _columns(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{} AS {}").format(_column(name), sql.Identifier(name)) for name in names)
