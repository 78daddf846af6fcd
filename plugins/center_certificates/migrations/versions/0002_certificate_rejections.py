"""Certificates count their rejections; one notice marker per event and occurrence.

So each rejection is told to the client once.

Revision ID: 0002_certificate_rejections
Revises: 0001_center_certificates
Create Date: 2026-11-23 19:30:00.000000
"""

from alembic import op
import sqlalchemy as sa

revision = "0002_certificate_rejections"
down_revision = "0001_center_certificates"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("center_certificates_certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejections", sa.Integer(), server_default=sa.text("0"), nullable=False))
    # Markers written so far are of the events told once per certificate: occurrence 0.
    with op.batch_alter_table("center_certificates_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.drop_constraint("uq_center_certificates_notices_certificate_id_event", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_center_certificates_notices_certificate_id_event_occurrence"),
            ["certificate_id", "event", "occurrence"],
        )


def downgrade():
    op.execute("DELETE FROM center_certificates_notices WHERE occurrence <> 0")
    with op.batch_alter_table("center_certificates_notices", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_center_certificates_notices_certificate_id_event_occurrence"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_center_certificates_notices_certificate_id_event"), ["certificate_id", "event"]
        )
        batch_op.drop_column("occurrence")
    with op.batch_alter_table("center_certificates_certificates", schema=None) as batch_op:
        batch_op.drop_column("rejections")
