"""SQL fragments that walk the command structure as it is now (depth-bounded, so a corrupted tree cannot loop)."""

from __future__ import annotations


def sub_command_of(seed_units: str) -> str:
    """CTEs `unit_up` and `sub_of`: for every unit the seed SELECT yields, its nearest 分指挥部 (sub-command)."""
    return f"""unit_up (origin, cur, depth) AS (
    {seed_units}
    UNION ALL
    SELECT uu.origin, su.parent_id, uu.depth + 1 FROM unit_up uu JOIN structure_units su ON su.unit_id = uu.cur
     WHERE su.unit_kind <> 'sub_command' AND su.parent_id IS NOT NULL AND uu.depth < 64
), sub_of AS (
    SELECT DISTINCT ON (uu.origin) uu.origin AS unit_id, s.unit_id AS sub_command_id, s.name AS sub_command_name
      FROM unit_up uu JOIN structure_units s ON s.unit_id = uu.cur AND s.unit_kind = 'sub_command'
     ORDER BY uu.origin, uu.depth
)
"""
