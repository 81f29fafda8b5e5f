"""The bodies of the `credledger` subcommands."""
