"""Join the core services (files, mail, clients and audit) back into one line of history.

Revision ID: 0005_core_services
Revises: 0002_files, 0003_mail, 0004_clients_audit
Create Date: 2026-11-23
"""

revision = "0005_core_services"
down_revision = ("0002_files", "0003_mail", "0004_clients_audit")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
