"""Which failed inserts retrying cannot fix: the rows themselves are refused.

A permanent failure depends on the rows sent (a value ClickHouse cannot parse or convert, a
violated constraint, a value too large for its column): the same rows fail the same way every
time, so the sink isolates them and dead-letters them. Everything else is transient (network,
time-outs, TOO_MANY_PARTS, memory limits, a server shutting down, read-only or unavailable
replicas, and also schema errors such as an unknown table or column, which fail every row and
are an operator's to fix): retried with backoff, never dead-lettered. An unknown code counts as
transient, since waiting loses nothing while dead-lettering a healthy batch would.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

# ClickHouse server error codes (src/Common/ErrorCodes.cpp) that depend on the inserted values.
PERMANENT_CODES: dict[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    128: "TOO_LARGE_ARRAY_SIZE",
    131: "TOO_LARGE_STRING_SIZE",
    190: "SIZES_OF_ARRAYS_DONT_MATCH",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    377: "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
    469: "VIOLATED_CONSTRAINT",
}

# Documented for operators; any code not in PERMANENT_CODES is treated like these.
TRANSIENT_CODES: dict[int, str] = {
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    241: "MEMORY_LIMIT_EXCEEDED",
    242: "TABLE_IS_READ_ONLY",
    252: "TOO_MANY_PARTS",
    285: "TOO_FEW_LIVE_REPLICAS",
    319: "UNKNOWN_STATUS_OF_INSERT",
    394: "QUERY_WAS_CANCELLED",
    425: "SYSTEM_ERROR",
    999: "KEEPER_EXCEPTION",
    1000: "POCO_EXCEPTION",
}

# TOO_MANY_PARTS also names a batch spanning more partitions than one insert may create;
# smaller inserts fix that, and no single row can cause it, so it is never dead-lettered.
_SPLIT_FIXES = "partitions for single insert block"
CLIENT_DATA_ERROR = "CLIENT_DATA_ERROR"


@dataclass(frozen=True)
class Refusal:
    """Why ClickHouse refused rows for good: the error name and its message."""

    error: str
    detail: str


def refusal(exc: BaseException) -> Refusal | None:
    """The refusal if `exc` is a failure of the rows sent, None if retrying may succeed."""
    if isinstance(exc, DataError) and getattr(exc, "code", None) is None:
        # clickhouse-connect could not encode a value for its column: nothing was sent.
        return Refusal(CLIENT_DATA_ERROR, str(exc))
    if not isinstance(exc, DatabaseError) or exc.code is None:
        return None  # transport failure: connection refused or reset, time-out
    if exc.code in PERMANENT_CODES:
        return Refusal(PERMANENT_CODES[exc.code], str(exc))
    if exc.code == 252 and _SPLIT_FIXES in str(exc).lower():
        return Refusal("TOO_MANY_PARTITIONS_IN_BATCH", str(exc))
    return None
