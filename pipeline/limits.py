"""The bounds on what one untrusted input may cost us: one type, one set of defaults.

pipeline.toml's [limits] sets these (pipeline.settings reads the file into a `Limits`, and
documents each key's range); the gate, the envelope reader, ingest and the contained workers all
read the same object. Sizes are stated in MiB as staff write them; the readers use the `_bytes`
properties. Standard library only: the reader side imports it without the settings' TOML.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """Safety limits for untrusted inputs (README, 'Hostile inputs'; pipeline.toml's [limits])."""

    max_file_mib: float = 50  # one file as found in the inbox, or as a member of a zip or mail
    max_members: int = 1000  # zip members in one workbook or archive
    max_entry_mib: float = 200  # inflated size of one member of a workbook package
    max_total_mib: float = 500  # inflated size of all members of one input
    max_cells: int = 2_000_000  # non-empty cells in one sheet
    max_rows: int = 100_000  # real extent of a sheet (row of the last non-empty cell)
    max_cols: int = 200
    parse_timeout_s: float = 10.0  # the contained reader's time per call
    parse_memory_mib: float = 1024  # the contained reader's memory cap

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mib * MIB)

    @property
    def max_entry_bytes(self) -> int:
        return int(self.max_entry_mib * MIB)

    @property
    def max_total_bytes(self) -> int:
        return int(self.max_total_mib * MIB)

    @property
    def memory_bytes(self) -> int:
        return int(self.parse_memory_mib * MIB)
