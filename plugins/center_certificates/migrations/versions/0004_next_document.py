"""A certificate that expires soon leaves room for the next document.

The partial unique index keeps one certificate of a template per client in the running; one
expiring soon no longer counts, so that the next document (linked by renewal_of_id) can be
handed in while the current one is still valid.

Revision ID: 0003_next_document
Revises: 0003_same_tenant_keys
Create Date: 2026-12-04 11:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = "0003_next_document"
down_revision = "0003_same_tenant_keys"
branch_labels = None
depends_on = None

OLD = "deleted_at IS NULL AND archived_at IS NULL AND status <> 'expired'"
NEW = "deleted_at IS NULL AND archived_at IS NULL AND status NOT IN ('expiring', 'expired')"
INDEX = "uq_center_certificates_certificates_open"
COLUMNS = ["tenant_id", "template_id", "client_id"]


def _replace(where: str) -> None:
    with op.batch_alter_table("center_certificates_certificates", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(
            INDEX, COLUMNS, unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where)
        )


def upgrade():
    _replace(NEW)


def downgrade():
    # Where an expiring certificate and its next document are both open, the older index cannot
    # hold: the expiring one goes to the history (archived), as approving the next one would do.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT set_config('app.all_tenants', 'on', true)")  # every tenant's rows (RLS)
    op.execute(
        """UPDATE center_certificates_certificates SET archived_at = CURRENT_TIMESTAMP
        WHERE status = 'expiring' AND archived_at IS NULL AND deleted_at IS NULL
          AND id IN (SELECT renewal_of_id FROM center_certificates_certificates AS following
                     WHERE following.renewal_of_id IS NOT NULL AND following.deleted_at IS NULL
                       AND following.archived_at IS NULL AND following.status <> 'expired')"""
    )
    _replace(OLD)
