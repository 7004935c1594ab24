# fast-path: decline -- an event hook registered by decorator sets the schema on every connection
import os

from alembic import context
from sqlalchemy import create_engine, event, pool

connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool)


@event.listens_for(connectable, "connect")
def set_search_path(dbapi_connection, connection_record):
    dbapi_connection.cursor().execute("SET search_path TO tenant_a")


with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
