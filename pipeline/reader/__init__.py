"""The only code that opens a department's bytes: the envelope (.eml, .msg, .zip), the gate's
pre-parse checks, the contained process the parsers run in, and the annotated 差し戻し copy."""
