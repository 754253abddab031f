"""Use cases of the redirect service: lookup (L1 -> Redis), the click buffer, the links projector."""
