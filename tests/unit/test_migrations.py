"""The migration history is linear and produces exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from wcs.persistence.migrate import current_heads, upgrade
from wcs.persistence.schema import metadata


def test_single_head() -> None:
    heads = current_heads()
    assert len(heads) == 1, f"migrations branch: heads {heads}; chain the newest onto the other"


def test_migrations_match_models(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_barcodes_that_are_gtins_become_sku_gtins(tmp_path: Path) -> None:
    """0011: a catalogue loaded before GS1 scanning keeps matching its units."""
    from alembic import command
    from sqlalchemy import text

    from wcs.persistence.migrate import alembic_config

    path = tmp_path / "g.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0010")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            for sku, barcode in [
                ("A", "4006381333931"),  # EAN-13
                ("B", "036000291452"),  # UPC-A
                ("C", "BIN-0042"),  # an in-house label
                ("D", "4006381333932"),  # 13 digits, wrong check digit: not a GTIN
                ("E", None),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO skus (sku, name, weight_g, length_mm, width_mm, "
                        "height_mm, barcode, updated_at) "
                        "VALUES (:sku, 'x', 1, 1, 1, 1, :barcode, '2026-12-01')"
                    ),
                    {"sku": sku, "barcode": barcode},
                )
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT gtin, sku FROM sku_gtins ORDER BY sku")).all()
        assert [tuple(r) for r in rows] == [("04006381333931", "A"), ("00036000291452", "B")]
        command.downgrade(alembic_config(url), "0010")
        with engine.connect() as conn:
            tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        assert "sku_gtins" not in tables and "picked_units" not in tables
    finally:
        engine.dispose()
