"""The plan catalog and the department registry, loaded from the YAML files under schemas/.

The catalog is the plan tree (基本目標 → 施策の方向性 → 施策 → 事業) and the assignments: every
(事業, 担当課) pair that reports a rating, with the office that returns it. Nothing here knows the
size of the R6 plan: a larger plan is a larger YAML file. A broken file raises CatalogError
naming the file and the entry.

    >>> cat = load_catalog("R6")
    >>> cat.projects["31-34"].label, cat.projects["10"].measure_code
    ('31～34', '(3)②')
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from plan_schemas import SCHEMAS_DIR

from pipeline.errors import CatalogError
from pipeline.normalize import CIRCLED, RATINGS, department_key, edit_distance, fold, parse_project


@dataclass(frozen=True)
class Goal:
    number: int
    name: str


@dataclass(frozen=True)
class Direction:
    goal: int
    number: int
    name: str

    @property
    def code(self) -> str:
        return f"({self.number})"


@dataclass(frozen=True)
class Measure:
    goal: int
    direction: int
    number: int
    name: str

    @property
    def code(self) -> str:
        return f"({self.direction}){CIRCLED[self.number - 1]}"


@dataclass(frozen=True)
class Project:
    key: str  # "9", or "31-34" for a group reported as one row
    label: str  # as printed: "9", "31～34"
    name: str
    content: str
    goal: int
    direction: int
    measure: int
    order: int

    @property
    def measure_code(self) -> str:
        return f"({self.direction}){CIRCLED[self.measure - 1]}"

    @property
    def numbers(self) -> tuple[int, ...]:
        first, _, last = self.key.partition("-")
        return tuple(range(int(first), int(last or first) + 1))


@dataclass(frozen=True)
class Assignment:
    project: str  # Project.key
    department: str  # 担当課 as published
    office: str  # the office that receives and returns the template for it
    order: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.department)


@dataclass(frozen=True)
class Office:
    name: str
    aliases: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()


@dataclass
class Catalog:
    path: Path
    year: str  # "R6"
    year_label: str  # "令和6年度"
    year_western: int  # 2024
    plan: str
    title: str
    ratings: dict[str, str]
    rating_note: str
    goals: list[Goal]
    directions: list[Direction]
    measures: list[Measure]
    projects: dict[str, Project]
    assignments: list[Assignment]
    offices: dict[str, Office]
    routes: dict[str, str]
    version: str = ""
    # Indexes, built once by the loader: every look-up below is a dict access, so a plan of tens
    # of thousands of projects loads and validates in linear time.
    _by_number: dict[int, str] = field(default_factory=dict, repr=False)
    _office_keys: dict[str, str] = field(default_factory=dict, repr=False)
    _by_project: dict[str, list[Assignment]] = field(default_factory=dict, repr=False)
    _by_office: dict[str, list[Assignment]] = field(default_factory=dict, repr=False)
    _measures: dict[tuple[int, int, int], Measure] = field(default_factory=dict, repr=False)
    _names: dict[str, str] | None = field(default=None, repr=False)

    # Look-ups -------------------------------------------------------------------------

    @functools.cached_property
    def reading_version(self) -> str:
        """What reading a return depends on: the plan (`version`) and the names the registry knows
        (aliases, routes), which `version` leaves out so templates already sent stay valid. An
        alias added for a renamed section must reach the next night's cached verdicts."""
        names = [(n, list(o.aliases)) for n, o in self.offices.items()], sorted(self.routes.items())
        blob = json.dumps(names, ensure_ascii=False, sort_keys=True)
        return f"{self.version}:{hashlib.sha256(blob.encode('utf-8')).hexdigest()[:12]}"

    @functools.cached_property
    def assignment_keys(self) -> frozenset[tuple[str, str]]:
        """Every (project, 担当課) key of the plan, built once per run."""
        return frozenset(a.key for a in self.assignments)

    @functools.cached_property
    def senders(self) -> dict[str, str]:
        """Known sender address (lower case) → its office, from departments.yaml."""
        return {s: name for name, office in self.offices.items() for s in office.senders}

    def project_for(self, value: object) -> Project | None:
        """The project a 事業No. cell names: 9, "９", "31～34"; a single number inside a group
        (e.g. 32) is not accepted, because the group reports as one row."""
        key = parse_project(value)
        return self.projects.get(key) if key else None

    def group_containing(self, value: object) -> Project | None:
        """The group a single number belongs to (32 → 31～34), for a hint in messages."""
        key = parse_project(value)
        if key is None or "-" in key:
            return None
        group = self.projects.get(self._by_number.get(int(key), ""))
        return group if group is not None and group.key != key else None

    def assignments_of(self, project_key: str) -> list[Assignment]:
        """The project's assignments in plan order."""
        return self._by_project.get(project_key, [])

    def assignments_for_office(self, office: str) -> list[Assignment]:
        """The office's assignments in plan order."""
        return self._by_office.get(office, [])

    def office_named(self, text: str) -> str | None:
        """The canonical office for a name or alias, in any width or spacing."""
        return self._office_keys.get(department_key(text))

    def office_for_label(self, text: str) -> str | None:
        """The office that answers for a 担当課 text, by the registry's rule (see departments.yaml)."""
        key = department_key(text)
        for label, office in self.routes.items():
            if department_key(label) == key:
                return office
        m = re.fullmatch(r"\((.+)\)", key)
        if m:
            return self.office_named(m[1])
        m = re.fullmatch(r"(.+?)\((.+)\)", key)
        if m:
            return self.office_named(m[1]) or self.office_named(m[2])
        return self.office_named(key)

    def match_assignment(self, project_key: str, text: str) -> tuple[Assignment | None, str]:
        """Find the assignment a row's 担当課 means.

        Returns (assignment, how): how is "exact", "normalised" (same text but for width or
        spacing), "office" (the office's own name where the plan prints e.g. 地域福祉課(関係各課)),
        "not-assigned" (a known office that has no assignment for the project) or "unknown".
        """
        candidates = self.assignments_of(project_key)
        key = department_key(text)
        for a in candidates:
            if a.department == text:
                return a, "exact"
        for a in candidates:
            if department_key(a.department) == key:
                return a, "normalised"
        office = self.office_for_label(text)
        if office is None:
            return None, "unknown"
        by_office = [a for a in candidates if a.office == office]
        if len(by_office) == 1:
            return by_office[0], "office"
        return None, "not-assigned"

    def suggest_departments(self, text: str, limit: int = 3) -> list[str]:
        """The nearest known office names (and aliases, and routed 担当課 texts), for a message.

        Office names, not every assignment's 担当課 text: they are what people misspell, and a
        large plan has tens of thousands of texts (difflib compares with each of them)."""
        if self._names is None:
            names = {department_key(n): n for n in self.routes}
            for name, office in self.offices.items():
                names.update({department_key(alias): name for alias in office.aliases})
                names[department_key(name)] = name
            self._names = names
        keyed = self._names
        close = difflib.get_close_matches(department_key(text), list(keyed), n=limit * 2, cutoff=0.4)
        return list(dict.fromkeys(keyed[k] for k in close))[:limit]  # an alias names its office

    def goal_of(self, project_key: str) -> int:
        return self.projects[project_key].goal

    def office_in_name(self, text: str) -> str | None:
        """The one office whose name or alias a file or folder name contains, or None (no office, or
        names of several offices): 'R6_地域福祉計画評価_健康課.xlsx' → 健康課.

        A name inside a longer matched name counts once (地域福祉課 in 福祉保健部地域福祉課)."""
        key = department_key(text)
        # Every substring of the name up to the longest office key, looked up: linear in the
        # offices once (the longest key), not per file.
        seen = self.__dict__.get("_longest_key")
        if seen is None or seen[0] != len(self._office_keys):  # the loader may still be adding names
            seen = self.__dict__["_longest_key"] = (len(self._office_keys), max(map(len, self._office_keys), default=0))
        longest = seen[1]
        found = {key[i:j] for i in range(len(key)) for j in range(i + 2, min(len(key), i + longest) + 1)}
        keys = self._office_keys
        hits = [(k, keys[k]) for k in found if k in keys]
        offices = {office for k, office in hits if not any(k != other and k in other for other, _ in hits)}
        return next(iter(offices)) if len(offices) == 1 else None

    def misspelt_assignment(self, project_key: str, text: str, office: str) -> Assignment | None:
        """The office's assignment for a project when `text` is its name with a small misspelling
        (at most two characters and a third of the name differ), in a file known to come from it."""
        mine = [a for a in self.assignments_of(project_key) if a.office == office]
        if len(mine) != 1:
            return None
        key = department_key(text)
        o = self.offices[office]
        names = {department_key(n) for n in (office, *o.aliases, mine[0].department)}
        close = any(edit_distance(key, n) <= min(2, len(n) // 3) for n in names)
        return mine[0] if close else None


def _require(mapping: Any, key: str, path: Path, entry: str, kind: type = str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CatalogError(path, entry, f"'{key}' がありません。")
    value = mapping[key]
    if kind is str and not (isinstance(value, str) and value.strip()):
        raise CatalogError(path, entry, f"'{key}' は空でない文字列にしてください(今は {value!r})。")
    if kind is int and not (isinstance(value, int) and value > 0):
        raise CatalogError(path, entry, f"'{key}' は正の整数にしてください(今は {value!r})。")
    if kind is list and not (isinstance(value, list) and value):
        raise CatalogError(path, entry, f"'{key}' は1件以上のリストにしてください。")
    return value


def _read_yaml(path: Path) -> Any:
    try:
        # libyaml's loader when PyYAML was built with it (the wheels are): 10× faster, same result
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise CatalogError(path, "ファイル", "ファイルが見つかりません。") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(path, "ファイル", f"YAML として読めません: {exc}") from None


def load_registry(path: Path) -> tuple[dict[str, Office], dict[str, str]]:
    data = _read_yaml(path)
    offices: dict[str, Office] = {}
    owner: dict[str, str] = {}  # department_key of every name and alias → its office
    for i, entry in enumerate(_require(data, "offices", path, "offices", list)):
        name = _require(entry, "name", path, f"offices[{i}]")
        if name in offices:
            raise CatalogError(path, f"offices[{i}] {name}", "同じ課が2回登録されています。")
        aliases = entry.get("aliases") or ()
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise CatalogError(path, f"offices[{i}] {name}", "aliases は課の別名(文字列)のリストにしてください。例: aliases: [旧課名]")
        for alias in (name, *aliases):
            other = owner.setdefault(department_key(alias), name)
            if other != name:
                raise CatalogError(
                    path,
                    f"offices[{i}] {name}",
                    f"「{alias}」は課「{other}」の名前か別名として既に登録されています。1つの名前は1つの課にだけ"
                    f"登録してください(課の名前が変わった場合は、旧い課の項目を削除し、旧い名前を新しい課の aliases に移します)。",
                )
        senders = tuple(str(s).lower() for s in entry.get("senders") or ())
        offices[name] = Office(name, tuple(aliases), senders)
    routes = dict((data or {}).get("routes") or {})
    for label, office in routes.items():
        if office not in offices:
            renamed = owner.get(department_key(str(office)))
            if renamed is None:
                raise CatalogError(path, f"routes.{label}", f"課「{office}」は offices にありません。")
            routes[label] = renamed  # an old name kept as an alias of the renamed office
    return offices, routes


def reiwa_year(code: str) -> int | None:
    """The 令和 year of a fiscal-year code: "R7" → 7; None for anything else."""
    m = re.fullmatch(r"R(\d{1,3})", fold(str(code)).strip().upper())
    return int(m[1]) if m and int(m[1]) > 0 else None


def year_label(code: str) -> str:
    """"R7" → "令和7年度" ("R1" → "令和元年度")."""
    n = reiwa_year(code)
    if n is None:
        raise ValueError(f"年度コード「{code}」は R7 のように R と数字で書いてください。")
    return "令和元年度" if n == 1 else f"令和{n}年度"


def year_western(code: str) -> int:
    """"R7" → 2025: 令和N年度 is the fiscal year starting in April of 2018 + N."""
    n = reiwa_year(code)
    if n is None:
        raise ValueError(f"年度コード「{code}」は R7 のように R と数字で書いてください。")
    return 2018 + n


def _check_fiscal_year(fy: dict[str, Any], year: str, path: Path) -> None:
    """code, label and western must name the same year (a copied plan keeps last year's label)."""
    n = reiwa_year(year)
    if n is None:
        return  # not a 令和 code: nothing to compare
    label = _require(fy, "label", path, "fiscal_year")
    said = {1 if m == "元" else int(m) for m in re.findall(r"令和(\d+|元)年", fold(str(label)))}
    if said != {n}:
        raise CatalogError(
            path,
            "fiscal_year.label",
            f"「{label}」は code {year}({year_label(year)})と合いません。label: {year_label(year)} に直してください。",
        )
    western = _require(fy, "western", path, "fiscal_year", int)
    if western != year_western(year):
        raise CatalogError(
            path,
            "fiscal_year.western",
            f"西暦 {western} は {year}({year_label(year)})と合いません(令和N年度は西暦 2018+N 年度)。"
            f"western: {year_western(year)} に直してください。",
        )


def check_plan(path: Path, year: str, registry: Path) -> Catalog:
    """Load and check one plan file against a registry, without the compiled cache (for a new file)."""
    return _parse(year.upper(), Path(path), Path(registry))


def load_catalog(year: str = "R6", schemas_dir: Path | None = None) -> Catalog:
    """Load and check `schemas/plan-<year>.yaml` with `schemas/departments.yaml`."""
    return _load(year.upper(), (schemas_dir or SCHEMAS_DIR).resolve())


COMPILED_DIR = ".compiled"  # beside the YAML files; git-ignored


@cache
def _load(year: str, schemas_dir: Path) -> Catalog:
    """The checked catalog, from a compiled copy when the YAML files have not changed.

    YAML is the format people edit, but parsing it is slow for a large plan (a 60k-assignment
    catalog takes seconds); the checked result is pickled beside it, keyed by the bytes of both
    files and of this module, and used only when all three are unchanged. Deleting the folder
    changes nothing but time; a folder we cannot write to is simply not used.
    """
    path = schemas_dir / f"plan-{year.lower()}.yaml"
    registry = schemas_dir / "departments.yaml"
    try:
        h = hashlib.sha256()
        for part in (path, registry):  # the same digest as of the bytes joined, without joining them
            with open(part, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            h.update(b"\0")
        h.update(_CODE)
        digest = h.hexdigest()
    except OSError:
        digest = ""  # let the loader say which file is missing
    compiled = schemas_dir / COMPILED_DIR / f"{path.stem}-{digest[:24]}.pickle"
    if digest:
        with contextlib.suppress(Exception):  # missing, damaged or from another Python: rebuild
            with open(compiled, "rb") as fh:  # streamed: not the file's bytes and their objects at once
                catalog = pickle.load(fh)
            if isinstance(catalog, Catalog):
                catalog.path = path
                return catalog
    catalog = _parse(year, path, registry)
    if digest:
        with contextlib.suppress(OSError):
            compiled.parent.mkdir(exist_ok=True)
            for old in compiled.parent.glob(f"{path.stem}-*.pickle"):
                old.unlink(missing_ok=True)
            tmp = compiled.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "wb") as fh:  # streamed: not a copy of the catalog in bytes beside it
                pickle.dump(catalog, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, compiled)
    return catalog


_CODE = Path(__file__).read_bytes() + (Path(__file__).parent / "normalize.py").read_bytes()


def _missing_plan(path: Path, year: str) -> CatalogError:
    """The error for a plan file that does not exist: which years exist, and how to make this one."""
    have = sorted(
        (p.stem.removeprefix("plan-").upper() for p in path.parent.glob("plan-*.yaml")),
        key=lambda y: (len(y), y),
    )
    if have:
        hint = (
            f"前年度の計画から作るには python -m pipeline plan new-year {year} を実行し、できたファイルを "
            f"{year} の計画に合わせて編集してください(今ある年度: {'、'.join(have)})。年度の指定を間違えた場合は"
            f" --year か pipeline.toml の [plan] year を直してください。"
        )
    else:
        hint = "計画カタログのフォルダーが正しいか、pipeline.toml の [paths] schemas を確認してください。"
    return CatalogError(path, "ファイル", f"ファイルが見つかりません。{hint}")


def _parse(year: str, path: Path, registry: Path) -> Catalog:
    offices, routes = load_registry(registry)
    if not path.exists():
        raise _missing_plan(path, year)
    data = _read_yaml(path)
    fy = _require(data, "fiscal_year", path, "fiscal_year", dict)
    code = _require(fy, "code", path, "fiscal_year")
    if code.upper() != year:
        raise CatalogError(
            path,
            "fiscal_year.code",
            f"「{code}」はファイル名の年度 {year} と一致しません。code: {year} に直してください"
            "(前年度のファイルを写した場合は label と western も直します)。",
        )
    _check_fiscal_year(fy, year, path)
    ratings = _require(data, "ratings", path, "ratings", dict)
    if sorted(ratings) != list(RATINGS):
        raise CatalogError(path, "ratings", "評価基準は A・B・C・D の4つを定義してください。")

    catalog = Catalog(
        path=path,
        year=year,
        year_label=_require(fy, "label", path, "fiscal_year"),
        year_western=_require(fy, "western", path, "fiscal_year", int),
        plan=_require(data, "plan", path, "plan"),
        title=str(data.get("title") or data["plan"]),
        ratings={k: str(v) for k, v in ratings.items()},
        rating_note=str(data.get("rating_note") or ""),
        goals=[],
        directions=[],
        measures=[],
        projects={},
        assignments=[],
        offices=offices,
        routes=routes,
    )
    for name, office in offices.items():
        for alias in (name, *office.aliases):
            catalog._office_keys[department_key(alias)] = name

    def numbered(items: list[Any], entry: str) -> None:
        numbers = [_require(x, "number", path, f"{entry}[{i}]", int) for i, x in enumerate(items)]
        if numbers != list(range(1, len(items) + 1)):
            raise CatalogError(path, entry, f"番号は 1 から順に付けてください(今は {numbers})。")

    goals = _require(data, "goals", path, "goals", list)
    numbered(goals, "goals")
    for g in goals:
        gentry = f"基本目標 {g['number']}"
        catalog.goals.append(Goal(g["number"], _require(g, "name", path, gentry)))
        directions = _require(g, "directions", path, gentry, list)
        numbered(directions, f"{gentry} の施策の方向性")
        for d in directions:
            dentry = f"{gentry} ({d['number']})"
            catalog.directions.append(Direction(g["number"], d["number"], _require(d, "name", path, dentry)))
            measures = _require(d, "measures", path, dentry, list)
            numbered(measures, f"{dentry} の施策")
            if len(measures) > len(CIRCLED):
                raise CatalogError(path, dentry, f"施策は {len(CIRCLED)} までです。")
            for m in measures:
                measure = Measure(g["number"], d["number"], m["number"], _require(m, "name", path, dentry))
                mentry = f"{gentry} {measure.code}"
                catalog.measures.append(measure)
                catalog._measures[(measure.goal, measure.direction, measure.number)] = measure
                projects = m.get("projects") if isinstance(m, dict) else None
                if not isinstance(projects, list) or not projects:
                    raise CatalogError(
                        path,
                        f"{mentry} {measure.name}",
                        "この施策に事業が1件もありません。projects: に事業を加えるか、施策ごと削除して"
                        "施策の番号を 1 から付け直してください。",
                    )
                for p in projects:
                    _add_project(catalog, p, measure, path, f"{mentry} {measure.name}")
    if not catalog.assignments:
        raise CatalogError(path, "goals", "担当課の割り当てが1件もありません。")
    for a in catalog.assignments:
        catalog._by_project.setdefault(a.project, []).append(a)
        catalog._by_office.setdefault(a.office, []).append(a)
    catalog.version = _version(data, catalog)
    return catalog


def _add_project(catalog: Catalog, p: Any, measure: Measure, path: Path, mentry: str) -> None:
    raw = _require(p, "number", path, mentry, object)
    key = parse_project(raw)
    pentry = f"事業No.{raw}"
    if key is None:
        raise CatalogError(path, pentry, "事業No. は数字か 31～34 のような範囲にしてください。")
    if key in catalog.projects:
        first = catalog.projects[key]
        raise CatalogError(
            path,
            pentry,
            f"同じ事業No. が2回あります(1つ目は {first.measure_code} の「{first.name}」)。"
            "番号を付け直すか、重複した事業を削除してください。",
        )
    project = Project(
        key=key,
        label=key.replace("-", "～"),
        name=_require(p, "name", path, pentry),
        content=_require(p, "content", path, pentry),
        goal=measure.goal,
        direction=measure.direction,
        measure=measure.number,
        order=len(catalog.projects),
    )
    for n in project.numbers:
        if n in catalog._by_number:
            other = catalog.projects[catalog._by_number[n]]
            raise CatalogError(
                path,
                pentry,
                f"事業No.{n} が事業No.{other.label}「{other.name}」と重なっています。"
                "範囲(31～34 など)と個別の番号が重ならないように番号を付け直してください(欠番は構いません)。",
            )
        catalog._by_number[n] = key
    catalog.projects[key] = project
    assignments = p.get("assignments")
    if not isinstance(assignments, list) or not assignments:
        raise CatalogError(
            path,
            f"{pentry} {project.name}",
            "担当課の割り当てがありません。assignments: に「- department: 課名」を1件以上書いてください。",
        )
    seen: dict[str, str] = {}
    for i, a in enumerate(assignments):
        dept = _require(a, "department", path, f"{pentry} assignments[{i}]")
        earlier = seen.get(department_key(dept))
        if earlier is not None:
            same = "" if earlier == dept else f"(「{earlier}」と同じ課名です)"
            raise CatalogError(path, f"{pentry} {dept}", f"同じ担当課が2回あります{same}。どちらかを削除してください。")
        seen[department_key(dept)] = dept
        named = a.get("office")
        office = catalog.office_named(str(named)) if named else catalog.office_for_label(dept)
        if office not in catalog.offices:
            near = "、".join(catalog.suggest_departments(str(named or dept))) or "なし"
            if named:
                problem = (
                    f"office: の課「{named}」は departments.yaml にありません。登録されている課の名前か別名に直してください"
                    f"(近い名前: {near})。"
                )
            else:
                problem = (
                    "返送する課が分かりません。departments.yaml に課を登録するか(課の名前が変わった場合は旧い名前を"
                    f"新しい課の aliases に加えます)、office: を書いてください(近い名前: {near})。"
                )
            raise CatalogError(path, f"{pentry} {dept}", problem)
        catalog.assignments.append(Assignment(key, dept, office, len(catalog.assignments)))


def _version(data: Any, catalog: Catalog) -> str:
    """A hash of what templates depend on: the plan tree and who returns what.

    Documentation fields (repairs, notes) are left out, so editing a note does not invalidate
    the templates already sent out.
    """

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("repairs", "notes")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    payload = {
        "plan": strip(data),
        "offices": [(a.project, a.department, a.office) for a in catalog.assignments],
    }
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
