"""Per-patient snapshots of the last record pull: what an incremental pull starts from."""
