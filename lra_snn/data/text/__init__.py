"""LRA Text: IMDB reviews from the release archive or the Hub (source), tokenised by the data module (module)."""
