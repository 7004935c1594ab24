"""contract: drop notes.body (release 3)

The second half of the rename. Release 3 no longer reads or writes body, so it runs before and
after this revision; release 2 would not (it still writes body), which is why this runs only after
every release-2 process is gone. Rows written by release 2 between the expand and its noticing it
are copied over first.

Revision ID: 0003_contract_note_body
Revises: 0002_expand_note_content
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_contract_note_body"
down_revision = "0002_expand_note_content"
branch_labels = None
depends_on = None

alembic_deploy = {"contract": True}


def upgrade() -> None:
    op.execute("UPDATE notes SET content = body WHERE content IS NULL")
    op.drop_column("notes", "body")


def downgrade() -> None:
    op.add_column("notes", sa.Column("body", sa.Text, nullable=True))
    op.execute("UPDATE notes SET body = content")
