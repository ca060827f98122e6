"""Cases of the conformance corpus (``../shared/conformance``) and the skip table."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Case", "load_cases", "load_skip_table"]


@dataclass(frozen=True, slots=True)
class Case:
    """One recorded case; field meanings are those of the corpus README."""

    case_id: str
    category: str
    kind: str  # "execution" | "create_state_machine_error" | "validate_state_machine_definition"
    state_machine_type: str
    definition: Any
    definition_text: str | None
    input: Any
    expected: Mapping[str, Any]
    expected_from: tuple[str, ...] = ()
    history: list[dict[str, Any]] | None = None
    history_parallel_normalised: bool = False
    needs: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    normalisation: tuple[Mapping[str, Any], ...] = ()
    jsonpath_masks: tuple[Mapping[str, Any], ...] = ()
    key_masks: tuple[Mapping[str, Any], ...] = ()
    lambda_functions: tuple[Mapping[str, Any], ...] = ()
    path: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path | None = None) -> Case:
        return cls(
            case_id=data["case_id"],
            category=data.get("category", ""),
            kind=data.get("kind", "execution"),
            state_machine_type=data.get("state_machine_type") or "STANDARD",
            definition=data.get("definition"),
            definition_text=data.get("definition_text"),
            input=data.get("input"),
            expected=data.get("expected") or {},
            expected_from=tuple(data.get("expected_from") or ()),
            history=data.get("history"),
            history_parallel_normalised=bool(data.get("history_parallel_normalised")),
            needs=tuple(data.get("needs") or ()),
            features=tuple(data.get("features") or ()),
            normalisation=tuple(data.get("normalisation") or ()),
            jsonpath_masks=tuple(data.get("jsonpath_masks") or ()),
            key_masks=tuple(data.get("key_masks") or ()),
            lambda_functions=tuple(data.get("lambda_functions") or ()),
            path=path,
            raw=data,
        )

    def name_for(self, role: str) -> str | None:
        """The run-specific text recorded for a normalisation role (``state_machine_name``...)."""
        for entry in self.normalisation:
            if entry.get("role") == role and entry.get("value") is not None:
                return str(entry["value"])
        return None


def load_cases(directory: str | Path, filter_regex: str | None = None) -> list[Case]:
    """Every case under ``directory`` (the corpus root or its ``cases/`` folder), sorted.

    ``filter_regex`` is searched in the case id and in ``<category>/<file name>``.
    """
    root = Path(directory)
    if (root / "cases").is_dir():
        root = root / "cases"
    if not root.is_dir():
        raise FileNotFoundError(f"no conformance cases under {directory}")
    pattern = re.compile(filter_regex) if filter_regex else None
    cases = []
    for path in sorted(root.rglob("*.json")):
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or "case_id" not in data:
            continue
        case = Case.from_json(data, path)
        if pattern is not None and not (
            pattern.search(case.case_id) or pattern.search(f"{case.category}/{path.name}")
        ):
            continue
        cases.append(case)
    return cases


def load_skip_table(path: str | Path | None) -> dict[str, str]:
    """``case_id -> reason`` from a TOML file: top-level keys, or a ``[skip]`` table."""
    if path is None:
        return {}
    with Path(path).open("rb") as handle:
        data = tomllib.load(handle)
    table = data.get("skip", data) if isinstance(data.get("skip"), dict) else data
    return {str(case_id): str(reason) for case_id, reason in table.items()}
