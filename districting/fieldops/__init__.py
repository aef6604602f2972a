"""Stage-2 census operations: IINs, records, synthetic records, dedup, follow-up, progress."""
