"""LRA Pathfinder and Path-X: the generator (generate), generated images and the release layout (source),
the data module (module)."""
