"""WikiText-103: the release token files or the Hub (source), tokenised and grouped into windows by
the data module (module)."""
