"""The asyncpg store's error translation: a lost PostgreSQL is StoreUnavailable (JSON 503 with
Retry-After at the API), never a 500."""

import asyncpg
import pytest
from shorten.adapters.asyncpg_store import translate_errors
from shorten.domain.errors import StoreUnavailable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
    ],
)
def test_a_lost_connection_is_store_unavailable(error: Exception) -> None:
    with pytest.raises(StoreUnavailable), translate_errors():
        raise error
