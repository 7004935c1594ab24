"""triggers add-unique"""
from alembic import op

revision = "add_unique_bad"
down_revision = None


def upgrade():
    op.create_unique_constraint("uq_users_email", "users", ["email"])


def downgrade():
    op.execute("SELECT 1")
