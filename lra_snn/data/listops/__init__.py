"""LRA ListOps: the generator (generate), the release files and generated examples (source), the data
module (module)."""
