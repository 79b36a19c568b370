"""Email in and out: sources, MIME parsing, reply stripping, classification and threading keys."""
