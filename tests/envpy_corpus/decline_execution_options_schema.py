# fast-path: decline -- schema_translate_map through execution_options moves every table to another schema
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = engine_from_config(
    config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with connectable.connect() as connection:
    connection = connection.execution_options(schema_translate_map={None: "tenant_a"})
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
