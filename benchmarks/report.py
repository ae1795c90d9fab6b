"""Tables as Markdown, and a benchmark's report written under docs/benchmarks/ (Markdown and JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


@dataclass
class Table:
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(cells)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def as_records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Report:
    """One benchmark's output: a title, tables with their captions, notes, and the machine."""

    name: str
    title: str
    machine: dict[str, str]
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [f"# {self.title}", ""]
        for caption, table in self.tables:
            parts += [f"**{caption}**" if caption else "", "", table.markdown(), ""]
        parts += [f"![{chart}]({chart})" + "\n" for chart in self.charts]
        parts += [f"- {note}" for note in self.notes]
        parts += ["", "Machine: " + "; ".join(f"{k}: {v}" for k, v in self.machine.items() if k != "command")]
        parts += ["", f"Command: `{self.machine['command']}`", ""]
        return "\n".join(parts)

    def write(self, folder: Path = OUTPUT) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.md"
        path.write_text(self.markdown())
        record = {
            "title": self.title,
            "machine": self.machine,
            "tables": {caption: table.as_records() for caption, table in self.tables},
            "notes": self.notes,
            "data": self.data,
        }
        (folder / f"{self.name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        return path
