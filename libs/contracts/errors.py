class InvalidEvent(ValueError):
    """A topic payload that cannot be decoded into its contract (poison message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
