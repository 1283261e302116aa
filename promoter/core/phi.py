"""PHI matching: does a text, a list of names or a column of strings hold a bronze PHI value?

Pure: no I/O, no clock. The caller reads bronze (``pipelines.phi.bronze_index``) and what a run
produced (artifacts, signature, tables, log lines) and hands the strings here.

**The index.** Every distinct value of the configured PHI columns (and the id column) is
normalised to its tokens (case-folded runs of letters and digits: ``"(614) 555-0123"`` ->
``614 555 0123``) and kept only as an 8-byte keyed BLAKE2b digest of those tokens under a
per-scan random salt, in one sorted ``uint64`` array per token count. Memory is therefore about
10 bytes per distinct PHI value (a million members with nine PHI columns: about 90 MB), and no
PHI value is held in clear once the index is built. :attr:`PhiIndex.description` says the size.

Which values are indexed: a value of two or more tokens with at least ``MIN_CHARS`` letters and
digits (a full name, an address, a phone number, an e-mail address; not a bare calendar date, see
:func:`indexable`), or one
token with a digit and at least ``MIN_CHARS`` characters (an MRN, a member id). A lone word (a
first name, a last name on its own) is too common to be identifying and would match ordinary
words ("White" is a race category, "Grace" a word); such columns are indexed as the pair the
caller builds from one bronze row (``first_name + last_name``, both orders). Shorter values
(``"12"``, ``"OH"``) are counted as skipped.

**Matching.** A text is split into lines and each line into the same tokens; every window of
``n`` consecutive tokens, for each ``n`` the index holds, is digested and looked up. So a value
is found wherever its tokens appear in order, whatever the punctuation around them. Format
detectors (SSN-, US-phone- and e-mail-shaped strings, the PHI guard's patterns) run beside it.

A :class:`Finding` names where (``artifact data/report.md line 12``, ``table predictions
column note row 3``, ``log line 37``) and what (``value of PHI column ssn``); never the value.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_CHARS = 6  # letters and digits a value needs before it is matched on its own
MAX_FINDINGS = 20  # findings listed per source (a table, an artifact, the log); the rest are counted

TOKEN = re.compile(r"[^\W_]+")

# Python forms of the PHI guard's value patterns (pipelines.phi.VALUE_PATTERNS, Java for Spark).
PATTERNS: dict[str, re.Pattern[str]] = {
    "an SSN": re.compile(r"(?<![0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9])"),
    "a phone number": re.compile(r"(?<![0-9])(\([0-9]{3}\)\s?|[0-9]{3}[-.\s])[0-9]{3}[-.\s][0-9]{4}(?![0-9])"),
    "an e-mail address": re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
}


def tokens(text: str) -> list[str]:
    """The case-folded runs of letters and digits of ``text``."""
    return TOKEN.findall(text.casefold())


def _digest(toks: Sequence[str], salt: bytes) -> int:
    blob = " ".join(toks).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, key=salt, digest_size=8).digest(), "little")


def is_calendar_date(toks: Sequence[str]) -> bool:
    """``2000-01-01``, ``01/31/1990``, ``1990 1 31``: three digit tokens, one a year, the others day and month."""
    if len(toks) != 3 or not all(t.isdigit() for t in toks):
        return False
    years = [t for t in toks if len(t) == 4 and 1800 <= int(t) <= 2200]
    rest = [int(t) for t in toks if not (len(t) == 4 and 1800 <= int(t) <= 2200)]
    return len(years) == 1 and len(rest) == 2 and all(1 <= r <= 31 for r in rest)


def indexable(toks: Sequence[str]) -> bool:
    """Whether a value of these tokens is matched on its own (see the module docstring).

    A bare calendar date is not: a population of any size covers most days of a century, so
    every date in every artifact (a contract bound, a snapshot or score date) would "match" a
    date of birth. Dates of birth stay in bronze by the silver/gold guard (the column never
    leaves it); what this scan looks for are values that identify a person on their own.
    """
    chars = sum(len(t) for t in toks)
    if chars < MIN_CHARS or is_calendar_date(toks):
        return False
    if len(toks) >= 2:
        return True
    return len(toks) == 1 and any(c.isdigit() for c in toks[0])


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True, order=True)
class Finding:
    """One place PHI was found: ``where`` (e.g. ``log line 37``) and ``what`` (never the value)."""

    where: str
    what: str

    def line(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class ScanSummary:
    """What one scan looked at (the ``phi`` rule's message says it).

    Attributes:
        signature: the model signature was scanned (input and output names).
        input_example: the model's input example was scanned.
        artifacts: text artifacts scanned.
        skipped: artifacts not scanned, each with why (``plots/roc.png (binary)``).
        tables: tables scanned (by name).
        log_lines: log lines scanned.
        index: what the value index holds (``PhiIndex.description``).
    """

    signature: bool = False
    input_example: bool = False
    artifacts: int = 0
    skipped: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    log_lines: int = 0
    index: str = ""

    def merge(self, other: "ScanSummary") -> "ScanSummary":
        return ScanSummary(
            signature=self.signature or other.signature,
            input_example=self.input_example or other.input_example,
            artifacts=self.artifacts + other.artifacts,
            skipped=self.skipped + other.skipped,
            tables=self.tables + other.tables,
            log_lines=self.log_lines + other.log_lines,
            index=self.index or other.index,
        )

    def text(self) -> str:
        """E.g. ``signature, input example, 7 artifacts (4 binary skipped: ...), 2 tables, 412 log lines``."""
        parts: list[str] = []
        if self.signature:
            parts.append("signature")
        if self.input_example:
            parts.append("input example")
        if self.artifacts or self.skipped:
            art = f"{self.artifacts} artifact{'s' if self.artifacts != 1 else ''}"
            if self.skipped:
                art += f" ({len(self.skipped)} not scanned: {', '.join(self.skipped)})"
            parts.append(art)
        if self.tables:
            parts.append(f"{len(self.tables)} table{'s' if len(self.tables) != 1 else ''} ({', '.join(self.tables)})")
        parts.append(f"{self.log_lines} log line{'s' if self.log_lines != 1 else ''}")
        out = ", ".join(parts)
        return out + (f"; against {self.index}" if self.index else "")


@dataclass(frozen=True)
class PhiScan:
    """Findings and what was scanned to find them."""

    findings: tuple[Finding, ...] = ()
    summary: ScanSummary = field(default_factory=ScanSummary)

    @property
    def clean(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        """One line per finding, for the gate's ``phi_found``."""
        return [f.line() for f in self.findings]

    def merge(self, other: "PhiScan") -> "PhiScan":
        return PhiScan(self.findings + other.findings, self.summary.merge(other.summary))


def cap(findings: Iterable[Finding], label: str, limit: int = MAX_FINDINGS) -> list[Finding]:
    """At most ``limit`` findings, then one that counts the rest (``... and 12 more in <label>``)."""
    out: list[Finding] = []
    more = 0
    seen: set[Finding] = set()
    for f in findings:
        if f in seen:
            continue
        seen.add(f)
        if len(out) < limit:
            out.append(f)
        else:
            more += 1
    if more:
        out.append(Finding(label, f"{more} more finding(s) not listed"))
    return out


# --------------------------------------------------------------------------- the index


class PhiIndexBuilder:
    """Collect PHI values one at a time (streamed from bronze), then :meth:`build` the index."""

    def __init__(self, salt: bytes, phi_columns: Iterable[str] = ()) -> None:
        if len(salt) < 8:
            raise ValueError("the salt must be at least 8 random bytes")
        self._salt = bytes(salt)
        self._names = frozenset(c.casefold() for c in phi_columns)
        self._columns: list[str] = []
        self._column_ids: dict[str, int] = {}
        self._digests: dict[int, array] = {}
        self._owners: dict[int, array] = {}
        self.skipped = 0

    def add(self, column: str, value: object) -> bool:
        """Index one value of ``column`` (``None`` and short or common values are skipped).

        Returns:
            Whether the value was indexed.
        """
        if value is None:
            return False
        toks = tokens(str(value))
        if not indexable(toks):
            self.skipped += 1
            return False
        cid = self._column_ids.get(column)
        if cid is None:
            cid = self._column_ids[column] = len(self._columns)
            self._columns.append(column)
        n = len(toks)
        self._digests.setdefault(n, array("Q")).append(_digest(toks, self._salt))
        self._owners.setdefault(n, array("H")).append(min(cid, 65535))
        return True

    def build(self) -> "PhiIndex":
        """The index. A value held by several columns is named by the first column in name order,
        whatever order the values arrived in (Spark's ``distinct`` has none)."""
        order = sorted(range(len(self._columns)), key=lambda i: self._columns[i])
        columns = tuple(self._columns[i] for i in order)
        renumber = np.full(65536, 65535, dtype=np.uint16)  # owners are uint16 (see add)
        renumber[order[:65535]] = np.arange(min(len(order), 65535), dtype=np.uint16)
        tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for n, digests in self._digests.items():
            d = np.frombuffer(digests, dtype=np.uint64)
            o = renumber[np.frombuffer(self._owners[n], dtype=np.uint16)]
            by = np.lexsort((o, d))  # by digest, then by owner: the first of each digest is its name
            d, o = d[by], o[by]
            first = np.ones(len(d), dtype=bool)
            first[1:] = d[1:] != d[:-1]
            tables[n] = (d[first].copy(), o[first].copy())
        self._digests, self._owners = {}, {}
        return PhiIndex(self._salt, columns, tables, self._names, self.skipped)


class PhiIndex:
    """The salted digests of the bronze PHI values, by token count (see the module docstring)."""

    def __init__(
        self,
        salt: bytes,
        columns: tuple[str, ...],
        tables: dict[int, tuple[np.ndarray, np.ndarray]],
        names: frozenset[str],
        skipped: int = 0,
    ) -> None:
        self._salt = salt
        self.columns = columns
        self._tables = tables
        self.names = names
        self.skipped = skipped

    @classmethod
    def from_values(
        cls, values: Iterable[tuple[str, object]], salt: bytes, phi_columns: Iterable[str] = ()
    ) -> "PhiIndex":
        """An index of ``(column, value)`` pairs (small inputs and tests)."""
        b = PhiIndexBuilder(salt, phi_columns)
        for column, value in values:
            b.add(column, value)
        return b.build()

    @property
    def size(self) -> int:
        """Distinct values indexed."""
        return sum(int(d.shape[0]) for d, _ in self._tables.values())

    @property
    def nbytes(self) -> int:
        return sum(int(d.nbytes + o.nbytes) for d, o in self._tables.values())

    @property
    def description(self) -> str:
        """E.g. ``12,004 distinct bronze PHI values of 9 columns (117 KiB of salted digests)``."""
        kib = self.nbytes / 1024
        return (
            f"{self.size:,} distinct bronze PHI values of {len(self.columns)} column(s) "
            f"({kib:,.0f} KiB of salted digests"
            + (f"; {self.skipped:,} too short or common to match on their own" if self.skipped else "")
            + ")"
        )

    def _lookup(self, n: int, digests: Sequence[int]) -> list[int]:
        """For each digest of an ``n``-token window, the owning column's id or -1."""
        d, owners = self._tables[n]
        q = np.fromiter(digests, dtype=np.uint64, count=len(digests))
        pos = np.searchsorted(d, q)
        pos_c = np.minimum(pos, d.shape[0] - 1)
        hit = d[pos_c] == q
        return [int(owners[p]) if h else -1 for p, h in zip(pos_c, hit)]

    def match_tokens(self, toks: Sequence[str]) -> list[str]:
        """The PHI columns whose values appear (as consecutive tokens) in ``toks``, in order found."""
        found: list[str] = []
        for n in sorted(self._tables):
            if len(toks) < n:
                continue
            windows = [_digest(toks[i : i + n], self._salt) for i in range(len(toks) - n + 1)]
            for cid in self._lookup(n, windows):
                if cid >= 0 and self.columns[cid] not in found:
                    found.append(self.columns[cid])
        return found

    def is_phi_name(self, name: str) -> bool:
        return name.casefold() in self.names


# --------------------------------------------------------------------------- scanning


def _what_values(columns: Sequence[str]) -> str:
    return "value of PHI column " + ", ".join(columns)


def scan_string(index: PhiIndex, text: str, where: str, *, patterns: bool = True) -> list[Finding]:
    """Findings in one string (one line of a text, one cell of a table), all at ``where``."""
    out = []
    cols = index.match_tokens(tokens(text)) if text else []
    if cols:
        out.append(Finding(where, _what_values(cols)))
    if patterns and text and not cols:  # a bronze value is named by its column, not its shape
        for what, pattern in PATTERNS.items():
            if pattern.search(text):
                out.append(Finding(where, f"a value that looks like {what}"))
    return out


def scan_text(index: PhiIndex, text: str, where: str, *, first_line: int = 1) -> list[Finding]:
    """Findings in a text, line by line: ``<where> line <n>: value of PHI column ssn``."""
    out: list[Finding] = []
    for i, line in enumerate(text.splitlines(), first_line):
        out += scan_string(index, line, f"{where} line {i}")
    return cap(out, where)


def scan_lines(index: PhiIndex, lines: Sequence[str], where: str = "log") -> list[Finding]:
    """Findings in log lines (numbered from 1, a multi-line message counting each of its lines)."""
    out: list[Finding] = []
    n = 0
    for message in lines:
        for line in str(message).splitlines() or [""]:
            n += 1
            out += scan_string(index, line, f"{where} line {n}")
    return cap(out, where)


def count_lines(lines: Sequence[str]) -> int:
    """How many lines :func:`scan_lines` numbers in ``lines``."""
    return sum(len(str(m).splitlines()) or 1 for m in lines)


def scan_names(index: PhiIndex, names: Iterable[str], where: str) -> list[Finding]:
    """A PHI column name among ``names`` (a signature's inputs, a table's columns)."""
    return [Finding(f"{where} column {name}", "is a PHI column") for name in names if index.is_phi_name(str(name))]


def scan_cells(index: PhiIndex, cells: Iterable[tuple[int, object]], where: str) -> list[Finding]:
    """Findings in one column of a table: ``cells`` are ``(row number, value)``; ``where`` names
    the column (``table predictions column note``); each finding adds ``row <n>``."""

    def each() -> Iterable[Finding]:
        for row, value in cells:
            if value is None:
                continue
            yield from scan_string(index, str(value), f"{where} row {row}")

    return cap(each(), where)
