"""The sheets of the workbooks we write, one module per group of sheets, on a shared kit.

`pipeline.sheets.kit` (fonts, formats, print set-up, merged spans, charts), `pipeline.sheets.tally`
(the counts), the tables pipeline.publish shares (`pipeline.sheets.goals`, `pipeline.sheets.counts`),
and the master's own sheets (`pipeline.sheets.evaluation_list`, `pipeline.sheets.status`,
`pipeline.sheets.comparison`). pipeline.master composes the master and the summary from them.
"""
