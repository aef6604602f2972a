"""Writers that turn a finished plan into files for people: maps and assignment sheets."""
