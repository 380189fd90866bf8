"""Data problems as values: `Issue`, the registry of issue codes, and per-file reports.

Pure data, no file I/O and no pandas. Every stage builds Issues through `make_issue`, so
each code has exactly one severity and one Japanese message template, and the README's
code table is tested against `CODES`.

Its length is the registry: every code with its Japanese title and message lives here, in one
place, so that a code cannot have two wordings; the types around it are a few small dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.celltext import EXCEL_MAX_CHARS
from pipeline.filenames import shown_name

if TYPE_CHECKING:
    from pipeline.catalog import Catalog

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Code:
    """One stable issue code: its severity, a short Japanese title and a message template."""

    severity: str
    title: str
    template: str
    level: str = "row"  # "row": excludes one row; "file": rejects the file; "note": informs only


# Issue code registry. Codes are contracts (other tools read them): never rename one.
# Templates use str.format fields; unknown fields render as-is (see make_issue).
CODES: dict[str, Code] = {
    # --- validation of a returned workbook ------------------------------------------
    "rating-invalid": Code(
        ERROR,
        "事業評価が不正",
        "事業評価「{value}」は使えません。A・B・C・D のいずれか1文字を選んでください"
        "(A ほぼ達成 / B ある程度達成・要改善 / C 大きな課題 / D 未実施)。",
    ),
    "required-missing": Code(
        ERROR, "必須項目が空欄", "「{column}」が空欄です。この欄は必ず記入してください。"
    ),
    "project-unknown": Code(
        ERROR,
        "事業No.が計画にない",
        "事業No.「{value}」は計画にありません。{hint}テンプレートに印刷された事業No.をそのまま使ってください。",
    ),
    "measure-invalid": Code(
        ERROR,
        "施策No.を読み取れない",
        "施策No.「{value}」を読み取れません。(1)② のように、施策の方向性の番号と施策の丸数字で記入してください。",
    ),
    "measure-mismatch": Code(
        ERROR,
        "施策No.が事業と合わない",
        "施策No.「{value}」は事業No.{project} の施策({expected})と一致しません。"
        "施策No.を {expected} に直すか、事業No.を確認してください。",
    ),
    "assignment-unknown": Code(
        ERROR,
        "担当課が事業に割り当てられていない",
        "担当課「{value}」は事業No.{project} の担当ではありません。{hint}",
    ),
    "department-unknown": Code(
        ERROR,
        "担当課名が登録にない",
        "担当課「{value}」は課の一覧にありません。{hint}",
    ),
    "row-continuation": Code(
        WARNING,
        "続きの文章だけの行",
        "{cell} の「{value}」は、上の行(事業No.{project})の「{column}」の続きのようですが、別の行に書かれているため"
        "読み込んでいません。上の行の同じ列のセルに移し(セルの中の改行は Alt+Enter)、この行は削除してください。",
    ),
    "department-alias-missing": Code(
        WARNING,
        "課の名前が変わった可能性",
        "このファイルは {office} の提出ですが、全ての行の担当課が「{value}」で、課の一覧にありません。"
        "組織改正などで課の名前が変わった場合は、schemas/departments.yaml の {office} の行を"
        "「{line}」に直すと、次の集約から読み込めます。名前が変わっていない場合は、担当課を {office} に直して"
        "送ってもらってください。",
        level="note",
    ),
    "duplicate-row": Code(
        ERROR,
        "同じ事業・担当課の行が重複",
        "事業No.{project}・担当課「{value}」の行がこのファイルに2回以上あります({first}と重複)。"
        "1行にまとめてください。",
    ),
    "catalog-cell-changed": Code(
        ERROR,
        "テンプレートの印刷済みセルが変更された",
        "このセルは計画から印刷された欄で、変更できません({diff})。"
        "元に戻すか、新しいテンプレートに記入し直してください。",
    ),
    "template-mismatch": Code(
        ERROR,
        "別年度・別課・旧版のテンプレート",
        "このテンプレートは {found} のものです(今回受け付けるのは {expected})。地域福祉課から配布された"
        "今年度のテンプレートに記入し直してください。",
        level="file",
    ),
    "header-not-found": Code(
        ERROR,
        "見出し行が見つからない",
        "どのシートにも評価表の見出し(施策No.・事業No.・担当課・事業評価 など)が見つかりません。"
        "配布したテンプレートに記入して送ってください。",
        level="file",
    ),
    "extra-sheet": Code(
        WARNING,
        "読み込まないシート",
        "シート「{sheet}」{state}にも評価表がありますが、{why}ため読み込んでいません{year}。"
        "このシートの評価を使う場合は{fix}に書き写して送り直し、不要なシートなら削除してください。",
        level="note",
    ),
    "sheets-ambiguous": Code(
        ERROR,
        "どのシートの評価か決められない",
        "評価表のあるシートが複数あり({sheets})、どれが{year}の評価か決められないため、このファイルは読み込んで"
        "いません。{year}の評価を書いたシートだけを残し(ほかのシートは削除するか別のファイルに移して)、送り直して"
        "ください。",
        level="file",
    ),
    "column-missing": Code(
        ERROR,
        "必要な列がない",
        "シート「{sheet}」に「{column}」の列がありません。列を削除せず、テンプレートのまま送ってください。",
        level="file",
    ),
    "column-extra": Code(
        WARNING,
        "使わない列",
        "列「{value}」は評価表の列ではないため読み飛ばしました。",
    ),
    "office-mismatch": Code(
        ERROR,
        "他の課の行",
        "担当課「{value}」の行は {office} のテンプレートには含まれません。{value} の分は担当の課から提出してください。",
    ),
    "text-too-long": Code(
        ERROR,
        "文字数が多すぎる",
        "「{column}」が {length:,} 文字あります。Excel の1セルの上限 " f"{EXCEL_MAX_CHARS:,}" " 文字以内にしてください。",
    ),
    "value-normalised": Code(
        WARNING,
        "表記を直して読み込んだ",
        "「{value}」を「{normalised}」として読み込みました。次回からは「{normalised}」と記入してください。",
    ),
    "no-rows": Code(
        ERROR,
        "評価の行がない",
        "シートに評価の行がありません。テンプレートの各行に記入して送ってください。",
        level="file",
    ),
    "file-unreadable": Code(
        ERROR,
        "ファイルを読めない",
        "ファイルをブックとして読めません({detail})。Excel で開けることを確認し、.xlsx 形式で保存し直して"
        "送ってください。",
        level="file",
    ),
    # --- e-mail intake -----------------------------------------------------------------
    "email-no-attachment": Code(
        ERROR,
        "メールに Excel ファイルがない",
        "メールに Excel ファイルが添付されていません{detail}。評価表(.xlsx)を添付したメールを"
        "保存し直すか、添付ファイルだけを受付フォルダに置いてください。",
        level="file",
    ),
    "email-unreadable": Code(
        ERROR,
        "メールを読めない",
        "「{value}」をメールとして読めません({detail})。メールソフトから .eml または .msg 形式で"
        "保存し直すか、添付の Excel ファイルだけを受付フォルダに置いてください。",
        level="file",
    ),
    "email-date-unparsed": Code(
        WARNING,
        "メールの送信日時の形式が読めない",
        "メールの Date ヘッダー「{value}」を日時として読めません(メールの標準の形式ではありません)。代わりにファイルの"
        "更新日時を受信日時として使います。同じ課から複数の提出がある場合は、どれが最新か確認してください。"
        "メールソフトから .eml または .msg 形式で保存し直すと、正しい送信日時が入ることがあります。",
        level="note",
    ),
    "email-date-missing": Code(
        WARNING,
        "メールの送信日時が読めない",
        "メールの送信日時を読み取れません({detail})。代わりにファイルの更新日時を受信日時として"
        "使います。同じ課から複数の提出がある場合は、どれが最新か確認してください。",
        level="note",
    ),
    "zip-unsafe": Code(
        ERROR,
        "安全に開けない ZIP ファイル",
        "ZIP ファイル「{value}」は安全に開けないため読み込みませんでした({detail})。"
        "Excel ファイルを圧縮せずにそのまま添付して送り直してください。",
        level="file",
    ),
    "zip-unreadable": Code(
        ERROR,
        "ZIP ファイルを読めない",
        "ZIP ファイル「{value}」を開けません({detail})。ファイルが壊れている可能性があります。"
        "Excel ファイルを圧縮せずにそのまま添付して送り直してください。",
        level="file",
    ),
    "zip-encrypted": Code(
        ERROR,
        "パスワード付き ZIP",
        "ZIP ファイル「{value}」はパスワード付きのため開けません({detail})。パスワードを付けずに、"
        "Excel ファイルをそのまま添付して送り直してください。",
        level="file",
    ),
    "zip-no-workbook": Code(
        ERROR,
        "ZIP に Excel ファイルがない",
        "ZIP ファイル「{value}」の中に Excel ファイルがありません{detail}。評価表(.xlsx)を入れて"
        "送り直してください。",
        level="file",
    ),
    # --- hostile inputs: the gate ---
    # File-level codes come from pipeline.reader.gate (before any parser runs) and pipeline.reader.sandbox;
    # the cell-/row- codes are raised by the reader from the gate's SheetFacts.
    "file-empty": Code(
        ERROR,
        "ファイルが空",
        "ファイルの中身が空(0 バイト)です。保存が終わってから、もう一度ファイルを添付して送ってください。",
        level="file",
    ),
    "file-too-large": Code(
        ERROR,
        "ファイルが大きすぎる",
        "ファイルが大きすぎます({detail})。不要なシート・画像・空の行を削除して保存し直して送ってください。",
        level="file",
    ),
    "file-not-workbook": Code(
        ERROR,
        "Excel ブックではない",
        "このファイルは Excel ブックではありません({detail})。評価は配布したテンプレート(.xlsx)に記入し、その Excel "
        "ファイルを送ってください。ファイル名を .xlsx に変えるだけでは変換されません。Excel で作った別の形式のファイルなら、"
        "Excel で開き、「名前を付けて保存」で「Excel ブック (*.xlsx)」を選んで保存し直してください。",
        level="file",
    ),
    "file-corrupt": Code(
        ERROR,
        "ファイルが壊れている",
        "ファイルが壊れています({detail})。送信の途中で壊れた可能性があります。元のファイルが Excel で開けることを"
        "確認し、Excel で .xlsx 形式で保存し直してから、もう一度添付して送ってください。",
        level="file",
    ),
    "file-zip-bomb": Code(
        ERROR,
        "展開後の大きさが異常",
        "ファイルの中身を展開すると異常に大きくなります({detail})。データのない行・列や不要なシートを削除し、"
        "Excel で .xlsx 形式で保存し直して送ってください。",
        level="file",
    ),
    "file-too-many-members": Code(
        ERROR,
        "ファイル内部の部品が多すぎる",
        "ファイル内部の部品が多すぎます({detail})。不要なシート・画像を削除し、Excel で .xlsx 形式で保存し直して"
        "送ってください。",
        level="file",
    ),
    "file-bad-member-name": Code(
        ERROR,
        "ファイル内部に不正な名前",
        "ファイルの内部に Excel が作らない不正な名前があります({detail})。このファイルは使えません。"
        "元のブックを Excel で開き、.xlsx 形式で保存し直して送ってください。",
        level="file",
    ),
    "file-unsafe-xml": Code(
        ERROR,
        "危険な記述を含む",
        "ファイルに Excel が作らない危険な記述(DTD・外部参照の宣言)があります({detail})。このファイルは使えません。"
        "元のブックを Excel で開き、.xlsx 形式で保存し直して送ってください。",
        level="file",
    ),
    "file-encrypted": Code(
        ERROR,
        "パスワード付きファイル",
        "ファイルにパスワードが設定されているため読めません。パスワードを外したコピーを送ってください"
        "(Excel の「ファイル」→「情報」→「ブックの保護」→「パスワードを使用して暗号化」でパスワードを消して保存)。",
        level="file",
    ),
    "file-legacy-xls": Code(
        ERROR,
        "Excel 95 以前の形式",
        "Excel 95 以前の古い形式({detail})のファイルのため読み込めません。Excel で開き、「ファイル」→「名前を付けて保存」で"
        "ファイルの種類「Excel ブック (*.xlsx)」を選んで保存し直して送ってください(LibreOffice の場合は"
        "ファイルの種類「Excel 2007-365 (.xlsx)」)。",
        level="file",
    ),
    "file-xlsb": Code(
        ERROR,
        "Excel バイナリ形式(.xlsb)",
        "Excel バイナリ形式(.xlsb)のファイルです。Excel で開き、「名前を付けて保存」で「Excel ブック (*.xlsx)」を"
        "選んで保存し直して送ってください。",
        level="file",
    ),
    "sheet-too-large": Code(
        ERROR,
        "シートが大きすぎる",
        "シート「{sheet}」が大きすぎるため読み込めません({detail})。離れた場所のセル、書式だけが設定された空の行・列、"
        "不要なデータを削除して保存し直して送ってください。",
        level="file",
    ),
    "reader-crashed": Code(
        ERROR,
        "読み込み処理が異常終了",
        "ファイルの読み込み中に処理が異常終了しました({detail})。Excel で開いて .xlsx 形式で保存し直して"
        "送ってください。それでも同じ場合は地域福祉課に連絡してください。",
        level="file",
    ),
    "memory-cap-unavailable": Code(
        WARNING,
        "読み込み処理のメモリ上限なし",
        "この PC では、返送ファイルを読む処理にメモリの上限({detail})を設定できませんでした。読み込みの時間制限は"
        "働いています。極端に大きなファイルで PC が遅くなることがあります。続く場合はシステム担当に連絡してください。",
        level="note",
    ),
    "file-name-undecodable": Code(
        WARNING,
        "ファイル名が文字として読めない",
        "ファイル名(またはフォルダー名)の一部が文字として読めません(バイト {value})。報告では「\ufffd[16進数]」と"
        "表示しています。ファイルの中身は通常どおり点検しました。古い共有フォルダーなどから来た名前です。"
        "読みやすくするには、名前を付け直して(例: 健康課_評価表.xlsx)受付フォルダに保存し直してください。",
        level="note",
    ),
    "template-edited": Code(
        WARNING,
        "手で変更されたテンプレートを残した",
        "テンプレート {value} は、前回このコマンドで作った後に変更されているため、上書きしませんでした。"
        "新しいテンプレートは {detail} に作りました。変更を残す必要がなければ、templates --force で作り直してください。",
        level="note",
    ),
    "file-not-regular": Code(
        ERROR,
        "通常のファイルではない",
        "これは通常のファイルではなく{value}です。読み込みませんでした。Excel のブックかメールを"
        "通常のファイルとして保存し直し、受付フォルダに置いてください。",
        level="file",
    ),
    "ignored-lock-file": Code(
        WARNING,
        "Excel の一時ファイル(対象外)",
        "{detail}。読み込みませんでした。Excel でブックを閉じると消えます(残っていれば削除してかまいません)。",
        level="note",
    ),
    "ignored-system-file": Code(
        WARNING,
        "システムファイル(対象外)",
        "{detail}。読み込みませんでした。対応は不要です。",
        level="note",
    ),
    "ignored-hidden": Code(
        WARNING,
        "隠しファイル・隠しフォルダー(対象外)",
        "{detail}。読み込みませんでした。返送のファイルであれば、隠し属性を外すか名前の先頭の「.」を取ってください。",
        level="note",
    ),
    "ignored-excluded": Code(
        WARNING,
        "除外したフォルダー(対象外)",
        "{detail}。中のファイルは読み込みませんでした。読み込むには設定ファイルの [paths] exclude から外してください。",
        level="note",
    ),
    "ignored-not-input": Code(
        WARNING,
        "返送ではないファイル(対象外)",
        "{detail}。読み込みませんでした。評価表であれば、Excel で開いて .xlsx で保存し直して受付フォルダに置いてください。",
        level="note",
    ),
    "file-vanished": Code(
        ERROR,
        "処理中にファイルが消えた",
        "ファイルが処理の途中で消えたか、読めなくなりました({detail})。受付フォルダを確認し、必要ならもう一度"
        "送ってもらってください。",
        level="file",
    ),
    "file-macros": Code(
        WARNING,
        "マクロを含む",
        "ファイルにマクロ(VBA など)が含まれています。マクロは実行せず、セルの値だけを読み込みました。"
        "次回はマクロを含まない Excel ブック (*.xlsx) で保存して送ってください。",
        level="note",
    ),
    "content-hidden": Code(
        WARNING,
        "非表示のシート",
        "シート「{sheet}」が非表示({value})になっています。見えない内容は確認漏れの原因になるため、"
        "不要なら削除し、必要なら再表示して保存してください。",
        level="note",
    ),
    "external-links": Code(
        WARNING,
        "ほかのブックへのリンク",
        "ほかのブックへのリンク(外部参照)が含まれています。リンク先は開かず、保存されていた値だけを読み込みました。"
        "値として貼り付けてリンクを解除してから送ってください。",
        level="note",
    ),
    "cell-dde": Code(
        ERROR,
        "外部プログラムを起動する数式",
        "セル {cell} に外部プログラムを起動する数式(DDE)「{value}」があります。この数式を削除し、"
        "値を直接入力して送ってください。",
    ),
    "cell-formula": Code(
        WARNING,
        "数式の計算結果を使用",
        "セル {cell} は数式({formula})です。保存されていた計算結果「{value}」を値として読み込みました。"
        "値をそのまま入力すると確実です。",
    ),
    "cell-formula-no-cache": Code(
        ERROR,
        "数式に計算結果がない",
        "セル {cell} の数式に計算結果が保存されていません。Excel で開いて値として貼り付けて保存し直してください。",
    ),
    "cell-error-value": Code(
        ERROR,
        "エラー値",
        "セル {cell} がエラー値「{value}」になっています。数式や参照先を直して、正しい値にしてから送ってください。",
    ),
    "cell-uncalculated": Code(
        WARNING,
        "数式の結果が未計算の可能性",
        "このファイルは Excel 以外のソフト({value})で作成・保存されているため、セル {cell} などの数式の計算結果が"
        "古いか 0 のままの可能性があります。Excel で開いて保存し直すか、値として貼り付けて送ってください。",
    ),
    "cell-merged": Code(
        WARNING,
        "結合セル",
        "セル {cell} は結合セル({value})の一部です。結合を解除し、それぞれのセルに値を入力してください。",
    ),
    "row-hidden": Code(
        WARNING,
        "非表示の行",
        "シート「{sheet}」の {value} 行目が非表示になっています。非表示の行も読み込みましたので、再表示して"
        "内容を確認してください。",
    ),
    "cell-control-chars": Code(
        WARNING,
        "制御文字を削除",
        "セル {cell} に見えない制御文字があったため、取り除いて読み込みました。",
    ),
    # --- senders of e-mailed returns -------------
    "sender-unknown": Code(
        WARNING,
        "登録のない送信元",
        "送信元「{value}」は担当課の登録アドレスにありません。内容を確認のうえ受理しました。"
        "正しい送信元であれば schemas/departments.yaml の senders に追加してください。",
        level="note",
    ),
    "sender-office-mismatch": Code(
        WARNING,
        "送信元と担当課が異なる",
        "送信元「{value}」は {sender_office} の登録アドレスですが、このファイルは {office} の評価です。"
        "代理送信でなければ担当課に確認してください。",
        level="note",
    ),
    # --- merge -------------------------------------------------------------------------
    "row-superseded": Code(
        WARNING,
        "新しい提出で置き換え",
        "事業No.{project}・担当課「{value}」の評価は、ファイル「{newer}」の内容で置き換えました({why})。",
        level="note",
    ),
    "row-kept-older": Code(
        WARNING,
        "新しい行に誤りがあるため前回の値を使用",
        "事業No.{project}・担当課「{value}」は新しいファイルの行に誤りがあるため、前回受理した"
        "「{older}」の値を集約に使っています。誤りを直して再提出してください。",
        level="note",
    ),
    # --- trust in the nightly master --------------
    "office-unverified": Code(
        WARNING,
        "提出した課を確認できない",
        "このファイルがどの課から提出されたか確認できません(テンプレートの情報・登録された送信元・"
        "ファイル名のいずれにも課名がありません)。各行の担当課で読み込みましたが、課が確認できた提出が"
        "ある評価はそちらを優先します。担当課には配布したテンプレートで提出してもらってください。",
        level="note",
    ),
    "year-mismatch": Code(
        ERROR,
        "別の年度の評価表",
        "このファイルは {found} の評価表です({where})。今回集約するのは {expected} の評価です。"
        "前年度の写しではなく、地域福祉課から配布された {expected} のテンプレートに記入して送ってください。",
        level="file",
    ),
    "own-output": Code(
        WARNING,
        "このツールが作成したファイル",
        "このファイルはこのツールが作成した{value}です({detail})。提出されたファイルではないため"
        "読み込みませんでした。受付フォルダから別の場所へ移してください。",
        level="note",
    ),
    "order-conflict": Code(
        WARNING,
        "受信順と保存順が逆",
        "{office} のファイル「{value}」は「{other}」より後に受信しましたが、ブックの保存日時は前です"
        "({saved} / {other_saved})。保存日時が新しい「{other}」の内容を使っています。"
        "古い下書きが後から受付フォルダに置かれていないか確認してください。",
        level="note",
    ),
    "time-in-future": Code(
        WARNING,
        "未来の日時",
        "{what}「{value}」が集約した時刻より1日以上先のため、この日時は信用せず、{fallback}で提出の新旧を判断しました。"
        "送った人のパソコンの日付・時刻の設定を確認してもらい、正しい時刻で保存し直して送ってもらってください。",
        level="note",
    ),
    "order-tie": Code(
        WARNING,
        "提出の新旧を決められない",
        "{office} のファイル「{value}」と「{other}」は{what}が同じ({time})で、どちらが新しいか分かりません。"
        "{breaker}で「{winner}」の内容を使っています。違う場合は、古い方を受付フォルダから移してください。",
        level="note",
    ),
    "row-dropped": Code(
        WARNING,
        "前回あった評価が消えた",
        "事業No.{project}・担当課「{value}」の評価は、前回の集約ではファイル「{older}」から取り込みましたが、"
        "今回は集約に含まれていません({reason})。受付フォルダと提出状況を確認してください。",
        level="note",
    ),
    "folder-unreadable": Code(
        ERROR,
        "フォルダーを読めない",
        "受付フォルダの中のフォルダー「{value}」を読めません({detail})。この中のファイルは集約されていません。"
        "フォルダーのアクセス権を確認してください。",
        level="file",
    ),
    # --- containment --------------
    "internal-error": Code(
        ERROR,
        "処理中の内部エラー",
        "このファイルの処理中に予期しないエラーが起きました({detail})。このファイルの評価は集約に"
        "含めていませんが、ほかのファイルの処理は続けました。ファイルを Excel で開いて保存し直して"
        "もう一度置いてください。それでも同じ場合は、このメッセージを添えてシステム担当に連絡してください。",
        level="file",
    ),
    "feedback-not-written": Code(
        ERROR,
        "差し戻し用の写しを作れない",
        "このファイルの差し戻し用の写しを作れませんでした({detail})。評価の取り込みには影響ありません。"
        "エラーの内容は 検証結果 シートで確認し、担当課に直接伝えてください。",
        level="note",
    ),
    "library-message": Code(
        WARNING,
        "読み込み用ライブラリのメッセージ",
        "このファイルを扱う途中で、表計算ファイル用のライブラリが次のメッセージを出しました(処理は続けています。"
        "対応は不要です。結果がおかしいときは、このメッセージを添えてシステム担当に連絡してください): {detail}",
        level="note",
    ),
    "row-missing": Code(
        ERROR,
        "テンプレートの行がない",
        "事業No.{project}・担当課「{value}」の行がテンプレートにありません(行が削除された可能性があります)。"
        "この評価は未提出の扱いです。配布したテンプレートの行を削除せずに記入して送ってください。",
    ),
    "row-from-earlier": Code(
        WARNING,
        "前回の提出の評価を使用",
        "事業No.{project}・担当課「{value}」の行はこのファイルにはありません。前回の提出({older})の評価を使います。"
        "直す評価だけを送った場合は、対応は不要です。",
        level="note",
    ),
    "row-moved": Code(
        WARNING,
        "テンプレートの行が移動している",
        "テンプレートの行が移動・挿入・削除されています({detail})。事業No.と担当課で照合して読み込みました。"
        "次回は行を動かさずに記入してください。",
    ),
    "line-break-pasted": Code(
        WARNING,
        "他のソフトから貼り付けた改行",
        "セル {cell} に他のソフトから貼り付けた改行(_x000D_)があったため、普通の改行として読み込みました。"
        "内容は変えていません。対応は不要です。",
    ),
    # --- .ods and .xls read through the gate --------------
    "file-legacy-format": Code(
        WARNING,
        "Excel ブック(.xlsx)以外の形式",
        "{value}のファイルです。セルの値だけを読み込みました{detail}。"
        "次回は Excel ブック (*.xlsx) で保存して送ってください(Excel:「ファイル」→「名前を付けて保存」→ "
        "ファイルの種類「Excel ブック (*.xlsx)」/ LibreOffice:「ファイル」→「名前を付けて保存」→ ファイルの種類"
        "「Excel 2007-365 (.xlsx)」→ 確認の画面で「Excel 2007-365 形式を使用!」)。",
        level="note",
    ),
    # --- checks that read the text --------------
    "reason-says-not-done": Code(
        WARNING,
        "評価 A・B なのに未実施・中止の記述",
        "事業評価は {rating} ですが、事業実績・評価理由(セル {cell})に「{value}」とあります。"
        "事業を実施しなかった場合は事業評価を D(未実施)にしてください。一部だけ中止・未実施の場合は、"
        "実施した内容と {rating} とした理由が分かるように書いてください。",
    ),
    "d-reports-results": Code(
        WARNING,
        "評価 D(未実施)なのに実績の記述",
        "事業評価は D(未実施)ですが、事業実績・評価理由(セル {cell})に実績と読める記述「{value}」があります。"
        "事業を実施した場合は事業評価を A・B・C から選び直し、未実施の場合は実施できなかった理由を書いてください。",
    ),
    "reason-same-as-last-year": Code(
        WARNING,
        "評価理由が前年度と同じ",
        "事業実績・評価理由(セル {cell})が前年度の記述とまったく同じです。今年度に実施した内容と評価の理由に"
        "書き直してください。前年度と同じ内容で正しい場合は、その旨を書き添えてください。",
    ),
    "outlook-missing-for-cd": Code(
        WARNING,
        "評価 C・D なのに今後の展望がない",
        "事業評価が {rating} のため、今後の事業計画・展望(セル {cell})に課題と次年度に向けた改善・検討の内容を"
        "書いてください(今の記入: {value})。",
    ),
    # --- publishing --------------
    "personal-info-suspected": Code(
        WARNING,
        "個人を特定できる記述の可能性",
        "事業No.{project}・担当課「{department}」の「{column}」に、個人を特定できるかもしれない記述「{value}」"
        "({kind})があります。公表してよい内容か確認してください。公表しない場合は、担当課に直してもらって"
        "集約し直すか、公表用ブックの該当セルを直してから PDF にしてください。",
        level="note",
    ),
}

FILE_STATUSES = ("accepted", "partial", "rejected", "superseded", "ignored")


@dataclass(frozen=True)
class Issue:
    """One problem found in one place. `cell` is an Excel address such as "G12"."""

    code: str
    severity: str
    message: str
    file: str = ""
    sheet: str = ""
    cell: str = ""
    column: str = ""
    value: str = ""
    row: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def is_file_level(self) -> bool:
        return CODES[self.code].level == "file"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Fields(dict[str, Any]):
    """str.format_map mapping for a registry message. A field the caller did not fill is a bug in
    our code, not in the department's file: under PIPELINE_STRICT_MESSAGES (set by the test suite)
    it raises, so a test finds it; in a real night it stays visible as {name} rather than stopping
    the night over one message."""

    def __missing__(self, key: str) -> str:
        if os.environ.get("PIPELINE_STRICT_MESSAGES"):
            raise KeyError(f"message field {{{key}}} is not filled")
        return "{" + key + "}"


def make_issue(
    code: str,
    *,
    file: str = "",
    sheet: str = "",
    cell: str = "",
    column: str = "",
    value: object = "",
    row: int | None = None,
    **fields: Any,
) -> Issue:
    """Build an Issue from the registry: severity and message come from `CODES[code]`.

    >>> make_issue("required-missing", sheet="記入シート", cell="F5", column="事業評価").message
    '「事業評価」が空欄です。この欄は必ず記入してください。'
    """
    spec = CODES[code]
    text = "" if value is None else str(value)
    shown = text if len(text) <= 60 else text[:57] + "…"
    values = _Fields(fields, value=shown, column=column, sheet=sheet, file=file, cell=cell)
    values.setdefault("hint", "")
    return Issue(
        code=code,
        severity=spec.severity,
        message=spec.template.format_map(values),
        file=file,
        sheet=sheet,
        cell=cell,
        column=column,
        value=shown,
        row=row,
    )


def internal_error(name: str, exc: BaseException) -> Issue:
    """internal-error on file `name`: a fault of ours, named with where it was raised, for the
    system staff."""
    import traceback
    from pathlib import Path

    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return make_issue("internal-error", file=name, detail=f"{type(exc).__name__}: {str(exc)[:160]}{where}")


@dataclass(frozen=True)
class Evaluation:
    """One valid evaluation: a (project, 担当課) assignment with the department's answer."""

    project: str  # catalog project key: "9" or "31-34"
    department: str  # the assignment's 担当課 as published in the catalog
    result: str  # 事業実績・評価理由
    rating: str  # A, B, C or D
    outlook: str  # 今後の事業計画・展望
    file: str = ""  # the name of the file it came from (FileVerdict.name)
    sheet: str = ""
    row: int = 0
    received: str = ""  # ISO 8601 time of the file (mtime, or the e-mail's Date)
    # Where 事業実績・評価理由 and 今後の事業計画・展望 stand in the file ("F7", "H7"; another layout's
    # own columns), for the text checks' cell addresses. Not part of the value.
    text_cells: tuple[str, str] = dataclasses.field(default=("", ""), compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.department)


# The evidence that orders a file among others, strongest first: the workbook's saved time
# (docProps/core.xml), the e-mail's Date, the file's modification time, else its name alone.
ORDER_SOURCES = ("saved", "email-date", "mtime", "name")

# How a file's office was decided, strongest first. The first three verify the office: a file with
# a verified office may change only that office's assignments, and its rows win over rows from a
# file whose office could not be verified ("rows": every row names one office; "none": several).
OFFICE_SOURCES = ("template", "sender", "file-name", "rows", "none")
VERIFIED_SOURCES = frozenset({"template", "sender", "file-name"})


@dataclass(frozen=True)
class Provenance:
    """Where one workbook came from, as found tonight (never cached: a file may be renamed)."""

    name: str  # path relative to the inbox, "/"-separated: "健康課/mail.eml ＞ R6_….xlsx"
    path: str = ""  # the inbox file it was read from
    sha256: str = ""
    received: str = ""  # ISO 8601: the e-mail's Date header, else the file's modification time
    sender: str = ""
    subject: str = ""
    mtime: str = ""  # ISO 8601: the inbox file's modification time
    email_date: str = ""  # ISO 8601: the Date header of the e-mail it came in, "" when none
    members: tuple[str, ...] = ()  # names inside a container that could not be read (encrypted, not workbooks)


@dataclass(frozen=True)
class ExcludedRow:
    """A data row excluded by an error, and the assignment it was for."""

    sheet: str
    row: int
    project: str
    department: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.department)


@dataclass(frozen=True)
class FileVerdict:
    """Everything validation decided about one file. Built once (`judged` / `ignored`), never changed:
    the merge reads verdicts and returns an Outcome of its own."""

    source: Provenance
    status: str  # accepted | partial | rejected | ignored  (superseded is the merge's word, not ours)
    issues: tuple[Issue, ...] = ()
    rows: tuple[Evaluation, ...] = ()
    kind: str = ""  # "template", "table" (a workbook in another layout), "" when not read
    office: str = ""  # the office that sent it, "" when unknown
    office_source: str = "none"  # one of OFFICE_SOURCES
    offices: frozenset[str] = frozenset()  # offices whose assignments its rows (valid or not) answer
    excluded: tuple[ExcludedRow, ...] = ()
    # The office's assignments our template return has no row for (each a row-missing, or
    # row-from-earlier when an earlier file holds a valid row for it), in plan order.
    absent: tuple[tuple[str, str], ...] = ()
    saved: str = ""  # docProps/core.xml dcterms:modified (UTC), "" when the workbook has none
    reason: str = ""  # why an ignored file was not read (Japanese)
    # Which evidence orders it among the office's files (one of ORDER_SOURCES) and the believed
    # times, deciding first: set by validation against the run's clock (see merge.evidence).
    order_source: str = ""
    order_times: tuple[tuple[str, str], ...] = ()
    from_cache: bool = False  # validated on an earlier night (same bytes): see pipeline.cache

    @classmethod
    def judged(cls, source: Provenance, issues: Iterable[Issue], rows: Iterable[Evaluation] = (),
               **fields: Any) -> FileVerdict:
        """The verdict of a file that was examined: its status follows from its issues.

        A file-level error rejects the file (and none of its rows is used); row errors make it
        partial; a file whose every row has an error is rejected."""
        issues = tuple(issues)
        rows = tuple(rows)
        errors = [i for i in issues if i.is_error and CODES[i.code].level != "note"]
        if any(i.is_file_level for i in errors) or (errors and not rows):
            status, rows = "rejected", ()
        elif errors:
            status = "partial"
        else:
            status = "accepted"
        return cls(source=source, status=status, issues=issues, rows=rows, **fields)

    @classmethod
    def ignored(cls, source: Provenance, reason: str, issues: Iterable[Issue] = (), **fields: Any) -> FileVerdict:
        return cls(source=source, status="ignored", issues=tuple(issues), reason=reason, **fields)

    def with_issues(self, issues: Iterable[Issue]) -> FileVerdict:
        """This verdict with its issues replaced, its status following from them as in `judged`."""
        if self.status not in ("accepted", "partial"):
            return dataclasses.replace(self, issues=tuple(issues))
        return FileVerdict.judged(self.source, issues, self.rows, **{
            f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if f.name not in ("source", "status", "issues", "rows")})

    def failed(self, issue: Issue) -> FileVerdict:
        """This verdict with one more file-level error: rejected, no rows (e.g. internal-error)."""
        return dataclasses.replace(self, status="rejected", issues=(*self.issues, issue), rows=())

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def received(self) -> str:
        return self.source.received

    @property
    def sender(self) -> str:
        return self.source.sender

    @property
    def subject(self) -> str:
        return self.source.subject

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def sha256(self) -> str:
        return self.source.sha256

    @property
    def verified(self) -> bool:
        return self.office_source in VERIFIED_SOURCES

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if not i.is_error]

    def to_dict(self, status: str | None = None, notes: Iterable[Issue] = ()) -> dict[str, Any]:
        """The file's entry in the JSON reports; the merge may give a final status and notes."""
        s = self.source
        return {
            "name": s.name,
            "path": shown_name(s.path),
            "status": status or self.status,
            "office": self.office,
            "office_source": self.office_source,
            "saved": self.saved,
            "received": s.received,
            "order_source": self.order_source,
            "sha256": s.sha256,
            "sender": s.sender,
            "subject": s.subject,
            "rows": len(self.rows),
            "reason": self.reason,
            "issues": [issue_entry(i) for i in (*self.issues, *notes)],
        }


def summary_counts(issues: Iterable[Issue], statuses: Iterable[str]) -> dict[str, Any]:
    """valid, errors, warnings and files per status: the head of every report we render."""
    issues = list(issues)
    statuses = list(statuses)
    return {
        "valid": not any(i.is_error for i in issues),
        "errors": sum(1 for i in issues if i.is_error),
        "warnings": sum(1 for i in issues if not i.is_error),
        "statuses": {s: statuses.count(s) for s in FILE_STATUSES},
    }


@dataclass(frozen=True)
class ValidationReport:
    """The result of validating a set of files: one verdict per file, in input order."""

    files: tuple[FileVerdict, ...] = ()
    notes: tuple[Issue, ...] = ()  # about the run's outputs, e.g. feedback-not-written

    @property
    def issues(self) -> list[Issue]:
        return [i for f in self.files for i in f.issues] + list(self.notes)

    @property
    def valid(self) -> bool:
        return not any(i.is_error for i in self.issues)

    @property
    def exit_code(self) -> int:
        return 0 if self.valid else 1

    def counts(self) -> dict[str, Any]:
        return summary_counts(self.issues, (f.status for f in self.files))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "files": [f.to_dict(notes=[n for n in self.notes if n.file == f.name]) for f in self.files],
        }


# --- the merge's outcome and the run report ----------------------------------------------------

# The status vocabulary, defined here once and shown as it is by every output: an office's status
# (提出状況, status, remind, the console), a file's (FILE_STATUS_LABELS) and an absent evaluation's.
STATUS_MISSING = "未提出"
STATUS_ERRORS = "エラーあり"
STATUS_PARTIAL = "一部受理"
STATUS_ACCEPTED = "受理"
# A file's status (FILE_STATUSES, as the run report records it) in the words staff read.
FILE_STATUS_LABELS = {
    "accepted": STATUS_ACCEPTED,
    "partial": STATUS_PARTIAL,
    "rejected": "不受理",
    "superseded": "新しい提出で置換",
    "ignored": "対象外",
}
# An assignment received from its office but not in the master (an error kept it out).
NOT_REFLECTED = "未反映"
UNATTRIBUTED = "差出課不明"
# Shown before the status of an office that still owes answers after the deadline: 期限超過(未提出).
STATUS_OVERDUE = "期限超過"
# Shown beside 受理 when a file of the office with errors came after the returns in use: staff look
# at it, the office owes nothing (受理(後の提出にエラーあり)).
LATER_ERRORS = "後の提出にエラーあり"


@dataclass(frozen=True)
class OfficeStatus:
    """One row of 提出状況: the one decision of what an office still owes, read by the master's
    提出状況, `status`, `remind` and the merge's console summary (through the run report)."""

    office: str
    assignments: int
    received: int  # files from this office (known by template, sender, name or its rows)
    valid: int  # assignments with a valid row in the master
    missing: int
    status: str = STATUS_MISSING
    last_file: str = ""
    last_time: str = ""
    senders: tuple[str, ...] = ()
    reason: str = ""  # the newest error of the office's files with errors that still stand
    missing_keys: tuple[tuple[str, str], ...] = ()  # (事業, 担当課) of each assignment with no valid row
    error_files: tuple[str, ...] = ()  # its files with errors not followed by a return accepted whole

    @property
    def owes(self) -> bool:
        """Still owes answers: some assignment has no valid row. Only such an office is reminded."""
        return self.status != STATUS_ACCEPTED

    @property
    def later_errors(self) -> bool:
        """受理, and a file with errors came after: shown beside 受理 for staff, never a reminder."""
        return self.status == STATUS_ACCEPTED and bool(self.error_files)

    def shown(self, overdue: bool = False) -> str:
        return office_label(self.status, self.later_errors, overdue)

    def to_dict(self) -> dict[str, Any]:
        return {
            "office": self.office,
            "assignments": self.assignments,
            "received": self.received,
            "valid": self.valid,
            "missing": self.missing,
            "status": self.status,
            "shown": self.shown(),
            "owes": self.owes,
            "reason": self.reason,
            "last_file": self.last_file,
            "last_time": self.last_time,
            "senders": list(self.senders),
            "missing_assignments": [{"project": p, "department": d} for p, d in self.missing_keys],
            "error_files": list(self.error_files),
        }


def office_label(status: str, later_errors: bool, overdue: bool) -> str:
    """An office's status as every output shows it: 受理, 受理(後の提出にエラーあり), 一部受理, …, and
    期限超過(…) for an office that still owes answers after the deadline."""
    if status == STATUS_ACCEPTED:
        return f"{status}({LATER_ERRORS})" if later_errors else status
    return f"{STATUS_OVERDUE}({status})" if overdue else status


@dataclass(frozen=True)
class DroppedRow:
    """An evaluation the previous run's master held and this run's does not."""

    project: str
    department: str
    file: str  # the file it came from last time
    reason: str  # why it is gone (Japanese)


@dataclass(frozen=True)
class Acknowledged:
    """A warning staff checked and accepted (schemas/acknowledged.yaml): kept out of the open
    issues, listed on its own with who accepted it and why."""

    issue: Issue
    project: str  # catalog project key
    department: str  # 担当課 as in the catalog
    who: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        i = self.issue
        return {"code": i.code, "project": self.project, "department": self.department, "who": self.who,
                "why": self.why, "file": i.file, "sheet": i.sheet, "cell": i.cell, "message": i.message}


@dataclass(frozen=True)
class Outcome:
    """What the merge made of a set of verdicts: it changes none of them."""

    rows: tuple[Evaluation, ...]  # one per assignment that has a valid row, in plan order
    statuses: dict[str, str]  # file name → final status (a verdict's, or "superseded")
    notes: tuple[Issue, ...]  # row-superseded, row-kept-older, order-conflict, row-dropped, ...
    offices: tuple[OfficeStatus, ...]
    unattributed: tuple[str, ...] = ()  # files whose office could not be told (差出課不明)
    dropped: tuple[DroppedRow, ...] = ()
    previous_rows: int | None = None  # evaluations in the previous run of the same year
    acknowledged: tuple[Acknowledged, ...] = ()  # text-check warnings staff accepted (not in notes)

    def goal_counts(self, catalog: Catalog) -> dict[str, dict[str, int]]:
        """A–D counts per 基本目標, every goal and rating present (zeros included)."""
        counts = {str(g.number): dict.fromkeys(RATING_LETTERS, 0) for g in catalog.goals}
        for r in self.rows:
            counts[str(catalog.goal_of(r.project))][r.rating] += 1
        return counts

    def with_notes(self, notes: Iterable[Issue]) -> Outcome:
        return dataclasses.replace(self, notes=(*self.notes, *notes))


RATING_LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class RunReport:
    """run-report.json as a typed value; `to_dict` is the one place it is serialised."""

    fiscal_year: str
    catalog_version: str
    assignments: int
    goals: dict[str, dict[str, int]]
    master: str
    summary: str
    generated_at: str
    files: tuple[FileVerdict, ...]
    outcome: Outcome
    notices: tuple[str, ...] = ()
    previous_year: dict[str, str] | None = None  # {"year", "source"} of last year's evaluations, when known
    feedback: dict[str, str] = dataclasses.field(default_factory=dict)  # file name → its copy in outbox/feedback/
    # outputs written under a stamped name because the usual one was locked (open in Excel):
    # {"output": 集約ブック / 集計ブック / 実行レポート / 差し戻し用の写し, "usual": path, "written": path}
    stale: tuple[dict[str, str], ...] = ()

    @property
    def issues(self) -> list[Issue]:
        return [i for f in self.files for i in f.issues] + list(self.outcome.notes)

    @property
    def exit_code(self) -> int:
        return 0 if not any(i.is_error for i in self.issues) else 1

    def counts(self) -> dict[str, Any]:
        return summary_counts(self.issues, (self.outcome.statuses.get(f.name, f.status) for f in self.files))

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts()
        notes: dict[str, list[Issue]] = {}
        for n in self.outcome.notes:
            notes.setdefault(n.file, []).append(n)
        return {
            "fiscal_year": self.fiscal_year,
            "rows": len(self.outcome.rows),
            "goals": self.goals,
            "master": self.master,
            "summary": self.summary,
            "catalog_version": self.catalog_version,
            "assignments": self.assignments,
            "generated_at": self.generated_at,
            "exit_code": self.exit_code,
            "statuses": counts["statuses"],
            "errors": counts["errors"],
            "warnings": counts["warnings"],
            "previous_rows": self.outcome.previous_rows,
            "offices": [o.to_dict() for o in self.outcome.offices],
            "unattributed": list(self.outcome.unattributed),
            "dropped": [dataclasses.asdict(d) for d in self.outcome.dropped],
            "notices": list(self.notices),
            "run_issues": [issue_entry(n) for n in notes.get("", ())],  # of the run, not of one file
            "stale": [dict(e) for e in self.stale],
            "previous_year": self.previous_year,
            "acknowledged": [a.to_dict() for a in self.outcome.acknowledged],
            "evaluations": [
                {"project": r.project, "department": r.department, "rating": r.rating, "file": r.file}
                for r in self.outcome.rows
            ],
            "files": [
                {
                    **f.to_dict(self.outcome.statuses.get(f.name, f.status), notes.get(f.name, ())),
                    "feedback": self.feedback.get(f.name, ""),
                }
                for f in self.files
            ],
        }


ISSUE_KEYS = ("code", "severity", "sheet", "cell", "column", "value", "message")


def issue_entry(issue: Issue) -> dict[str, Any]:
    """An issue as the JSON reports show it (the file is the entry it sits in)."""
    return {k: getattr(issue, k) for k in ISSUE_KEYS}


LEVEL_JA = {"row": "行を除外", "file": "ファイルを不受理", "note": "お知らせ"}


def codes_markdown() -> str:
    """The README's table of issue codes, generated from CODES (tests keep the two in step)."""
    lines = ["| code | severity | effect | title | message (Japanese, as shown to departments) |", "|---|---|---|---|---|"]
    for code, spec in CODES.items():
        effect = LEVEL_JA[spec.level] if spec.severity == ERROR or spec.level == "note" else "警告のみ"
        message = spec.template.replace("|", "\\|")
        lines.append(f"| `{code}` | {spec.severity} | {effect} | {spec.title} | {message} |")
    return "\n".join(lines)
