"""The analytics ClickHouse schema as numbered, forward-only SQL files.

`NNNN_name.sql` files are applied in order by `store.Store.migrate` and
recorded in `<database>.schema_migrations`. `${database}` stands for the
database name. Statements are separated by a `;` at the end of a line. Every
statement must be safe to repeat (IF NOT EXISTS), because a crash can land
between applying a file and recording it; the same SQL runs on chDB and on a
ClickHouse server.
"""
