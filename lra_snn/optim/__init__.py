"""Optimisation pieces the modules and the tasks share: the tags parameters carry and the AdamW groups
formed from them (``groups``), and the warmup-cosine schedule of the S4 code base (``schedule``)."""
