"""The marks we print between things and in place of a missing value, chosen once.

Each is in cp932 (JIS X 0208), so a Windows console in code page 932, a CSV saved as Shift_JIS
and Outlook print them as they are: "›" and "—" (U+203A, U+2014) are not, and showed as "?".
〓 (yearly.UNSHOWABLE) stands only for a character a console cannot show, never in a file.
"""

PART_SEP = " ＞ "  # a message or archive and the workbook inside it: "回答.eml ＞ 評価表.xlsx"
NO_VALUE = "―"  # no value to show (no rating last year, no file yet); U+2015, cp932 0x815C
