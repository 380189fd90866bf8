"""A night's outputs, staged beside their targets and then committed together or discarded.

One job: the merge writes several files (the feedback copies, the master, the summary, the run
report and its history copy) and a failure while writing any of them must leave every previous
output as it was. So each output is first written in full to a temporary beside its target
(`stage`, or `reserve` for a temporary another process fills), and only when all are written are
they renamed over their targets (`commit`). Whatever is not committed is removed (`discard`, and
on leaving the `with` block), so an exception anywhere before the commit leaves the previous
outputs and no temporaries.

A commit renames each staged file through `atomic.write_atomically` (fsync, retries while a
virus scanner holds the target). A target that stays locked (open in Excel on Windows) gets the
new file under a stamped sibling name instead: the commit returns the path actually written,
records the output in `stale` (the run report's list) and says so in `notices` (the console's and
the report's). Renames of different files are not one atomic step: a disk that fails between two
renames leaves the earlier ones done, each file whole.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pipeline import atomic


class Staging:
    """Temporaries of one night's outputs: stage, commit, discard.

    `commit` may be called more than once: each call commits what was staged since the last one
    (the run report is staged after the workbooks are committed, since it names where they went).
    """

    def __init__(self) -> None:
        self._staged: dict[Path, tuple[Path, str]] = {}  # target → (temporary, what staff call it)
        self.stale: list[dict[str, str]] = []  # {"output", "usual", "written"} per stamped output
        self.notices: list[str] = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.discard()

    @property
    def pending(self) -> dict[Path, Path]:
        """Each staged target and its temporary, in the order they were staged."""
        return {target: tmp for target, (tmp, _) in self._staged.items()}

    def reserve(self, target: Path, what: str) -> Path:
        """A fresh empty temporary beside `target` for a writer to fill (here or in another
        process); it is committed as `what` (e.g. 集約ブック) or discarded with the rest."""
        self.drop(target)  # staged again: the newer temporary wins
        tmp = atomic.temp_path_for(target)
        self._staged[target] = (tmp, what)
        return tmp

    def stage(self, target: Path, what: str, write: Callable[[Path], object]) -> Path:
        """Write `target`'s new content to a temporary beside it now; returns the temporary."""
        tmp = self.reserve(target, what)
        write(tmp)
        return tmp

    def adopt(self, target: Path, tmp: Path, what: str) -> None:
        """Take over a temporary another process wrote for `target` (atomic.temp_path_for)."""
        self.drop(target)
        self._staged[target] = (tmp, what)

    def drop(self, target: Path) -> None:
        """Forget `target`'s staged temporary and remove it: its previous output stays."""
        staged = self._staged.pop(target, None)
        if staged is not None:
            _unlink_quietly(staged[0])

    def commit(self, *targets: Path) -> dict[Path, Path]:
        """Rename staged temporaries over their targets: `targets` in that order, or every staged
        one in staging order. Returns each target and the path written: the target, or a stamped
        sibling when the target is locked (then recorded in `stale` and `notices`). An error stops
        the commit: what is not yet committed stays staged (and is discarded), what is committed
        stays."""
        written: dict[Path, Path] = {}
        for target in targets or tuple(self._staged):
            tmp, what = self._staged[target]  # KeyError: nothing was staged for it
            # write_atomically's own temporary receives the staged file by a rename (no copy),
            # then it is fsynced and replaced, with the stamped name when the target is locked.
            path = atomic.write_atomically(target, _move_from(tmp))
            del self._staged[target]
            if path != target:
                self._record_stale(target, path, what)
            written[target] = path
        return written

    def discard(self) -> None:
        """Remove every temporary not committed; the previous outputs stay as they were."""
        while self._staged:
            _, (tmp, _) = self._staged.popitem()
            _unlink_quietly(tmp)

    def _record_stale(self, target: Path, path: Path, what: str) -> None:
        self.notices.append(
            f"{what} {target.name} が開かれていたため(Excel など)、{path.name} に書き出しました。"
            f"{target.name} は古い内容のままです。閉じておけば、次の集約で {target.name} に書き直します。"
        )
        self.stale.append({"output": what, "usual": str(target), "written": str(path)})


def _move_from(tmp: Path) -> Callable[[Path], None]:
    def move(t: Path) -> None:
        os.replace(tmp, t)

    return move


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # if it cannot go now, atomic.sweep_all removes it next night
        path.unlink(missing_ok=True)
