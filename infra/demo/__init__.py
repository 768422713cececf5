"""`dudao demo` (off the production path): the 高安 2021 campaign loaded through the real command path."""
