"""The project database: SQLAlchemy 2 models, the engine from `database.url`, migrations.

`models` holds the tables (the outbox first; series, revisions, jobs and runs join it in
later migrations), `db` the engine, sessions and `upgrade()` (alembic, programmatically,
with the migrations shipped in `migrations/`).
"""
