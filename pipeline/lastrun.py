"""`outbox/last-run.json`: how the last merge ended, whatever the way it ended.

Every `merge` command writes it atomically when it ends (exit 0, 1, 2, 3, 4 or interrupted):

    {"command": "merge --outbox outbox", "started": "2025-05-27T02:00:01+09:00",
     "finished": "2025-05-27T02:03:40+09:00", "exit_code": 3, "message": "<Japanese, why>",
     "report": "outbox/run-report.json" | null,
     "last_success": "<finished of the last merge that wrote its outputs>" | null,
     "failed_nights": [{"started", "exit_code", "message"}, ...]}

A merge succeeded when it wrote its outputs (exit 0 or 1); `failed_nights` lists the failed merges
since the last success, oldest first (the next master's 提出状況 shows them). `status` starts from
this file. Imports only the standard library and pipeline.atomic / jsontext / wareki.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LAST_RUN_NAME = "last-run.json"
SUCCEEDED = (0, 1)  # the merge wrote its outputs (1: some inputs had errors)
MAX_FAILED_LISTED = 60  # a folder left broken for months does not grow the file without bound


def read_last_run(outbox: Path) -> dict[str, Any] | None:
    """The last merge's record, or None when there is none or it cannot be read."""
    try:
        data = json.loads((outbox / LAST_RUN_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("exit_code"), int) else None


def succeeded(record: dict[str, Any]) -> bool:
    return record.get("exit_code") in SUCCEEDED


def failed_nights(outbox: Path) -> list[dict[str, Any]]:
    """The failed merges since the last successful one, oldest first."""
    record = read_last_run(outbox)
    if record is None:
        return []
    return [n for n in record.get("failed_nights") or [] if isinstance(n, dict)]


def record_last_run(outbox: Path, *, command: str, started: str, finished: str, exit_code: int, message: str,
                    report: str | None) -> dict[str, Any]:
    """Write last-run.json atomically (carrying the last success and the failed nights forward).
    Raises OSError when the outbox cannot be written."""
    from pipeline import atomic, jsontext

    before = read_last_run(outbox) or {}
    last_success: str | None
    if exit_code in SUCCEEDED:
        last_success, failed = finished, []
    else:
        last_success = before.get("last_success")
        failed = [n for n in before.get("failed_nights") or [] if isinstance(n, dict)]
        failed = [*failed, {"started": started, "exit_code": exit_code, "message": message}][-MAX_FAILED_LISTED:]
    record = {
        "command": command,
        "started": started,
        "finished": finished,
        "exit_code": exit_code,
        "message": message,
        "report": report,
        "last_success": last_success,
        "failed_nights": failed,
    }
    outbox.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes_atomically(outbox / LAST_RUN_NAME, jsontext.dumps_utf8(record), fallback=False)
    return record


def failed_sentence(record: dict[str, Any]) -> str:
    """「前回の夜間集約(日時)は失敗しました(終了コード N):理由。最後に成功した集約は(日時)です。」"""
    from pipeline.wareki import wareki_time

    reason = str(record.get("message") or "理由は記録されていません").strip().rstrip("。")
    success = record.get("last_success")
    last = f"最後に成功した集約は({wareki_time(success)})です。" if success else "成功した集約はまだありません。"
    return (f"前回の夜間集約({wareki_time(str(record.get('started', '')))})は失敗しました"
            f"(終了コード {record.get('exit_code')}):{reason}。{last}")


def summary_sentence(record: dict[str, Any]) -> str:
    """The first line of `status`: how the last merge ended."""
    from pipeline.wareki import wareki_time

    if not succeeded(record):
        return failed_sentence(record)
    how = "エラーなし" if record.get("exit_code") == 0 else "一部のファイルにエラーあり"
    return f"前回の夜間集約({wareki_time(str(record.get('started', '')))})は完了しました({how}、終了コード {record.get('exit_code')})。"
