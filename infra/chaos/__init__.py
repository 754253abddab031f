"""`just chaos`: a bounded fault suite against the native stack (loopback only)."""
