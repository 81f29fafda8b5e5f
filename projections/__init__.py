"""Projections: pure folds of the log into current state, and where that state is stored."""
