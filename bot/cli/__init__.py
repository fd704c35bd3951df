"""The `duban` command line: parse arguments, call a service, print."""
