"""The columns of an evaluation row: their published labels, which are required, and limits.

Plain data (no pandera import), so the reader can name columns without loading the schema library.
"""

MEASURE_PATTERN = r"^\(\d{1,2}\)[①-⑳]$"
RATINGS = ["A", "B", "C", "D"]

# label → column id used in messages and in the frame
MEASURE = "施策No."
PROJECT = "事業No."
DEPARTMENT = "担当課"
RESULT = "事業実績・評価理由"
RATING = "事業評価"
OUTLOOK = "今後の事業計画・展望"

REQUIRED = (PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK)
