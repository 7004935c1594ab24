# fast-path: decline -- the engine is the application's own (its URL is not known here)
from alembic import context

from app.db import engine
from app.models import Base

target_metadata = Base.metadata

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
