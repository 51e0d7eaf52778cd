"""poolwise lab: the seed's "processes vs threads" table, measured on this machine."""
