"""Use cases of the analytics API: link stats and top links, who is calling, answer caches."""
