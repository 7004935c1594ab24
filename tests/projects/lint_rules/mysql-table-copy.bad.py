"""triggers mysql-table-copy"""
from alembic import op

revision = "mysql_table_copy_bad"
down_revision = None


def upgrade():
    op.drop_constraint("PRIMARY", "events", type_="primary")


def downgrade():
    op.execute("SELECT 1")
