"""Source mapping profiles: how each source's payload becomes the canonical record.

`paths` reads values out of nested JSON, `transform` converts them (dates, numbers,
compensation, enums, text), `profile` holds a compiled profile, `load` reads and checks
the TOML files, and `mdm.flow.map` applies a profile to one payload.
"""
