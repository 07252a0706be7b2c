"""Alembic environment: always run on a connection handed over by the journal, inside its transaction."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the journal always passes its connection
    raise RuntimeError("runjournal migrations run through journal.Journal / `runjournal db upgrade`")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
