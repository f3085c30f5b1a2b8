"""The privacy layer: erasure, access, scrubbing, retention and the audit log."""
