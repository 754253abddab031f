"""Shared service plumbing: settings base, JSON errors, health routes, ASGI server runner."""
