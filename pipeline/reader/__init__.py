"""The only code that parses a department's bytes, and it does so only inside a contained worker
(pipeline.reader.sandbox) under the reader's memory cap and timeout, on every platform:
pipeline.reader.contained holds the calls that run there (unwrap an e-mail or zip, read a
workbook through the gate, calamine and the candidate rows, annotate a 差し戻し copy) and hands
plain values back. The flow is one way: ingest reads files and validate judges rows; neither is
imported from here."""
