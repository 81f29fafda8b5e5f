"""The event log: one append path, a hash chain, reading and verification. Imports nothing of the project."""
