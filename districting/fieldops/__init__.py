"""Stage-2 census operations: IINs, the record format, synthetic records and deduplication."""
