"""LRA Retrieval: the AAN pair TSVs of the LRA release (source), tokenised by the data module (module)."""
