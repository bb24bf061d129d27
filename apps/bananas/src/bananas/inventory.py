"""The inventory itself: a count that several request threads change safely."""

from __future__ import annotations

import threading

MAX_COUNT = 1_000_000  # per request, and the most the inventory holds


class InventoryError(ValueError):
    """A change the inventory refuses; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def parse_count(value: object) -> int:
    """A count from a request body: a positive integer (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InventoryError("count must be an integer", 400)
    if not 1 <= value <= MAX_COUNT:
        raise InventoryError(f"count must be between 1 and {MAX_COUNT}", 400)
    return value


class Inventory:
    def __init__(self, initial: int = 0) -> None:
        if not 0 <= initial <= MAX_COUNT:
            raise InventoryError(f"initial count must be between 0 and {MAX_COUNT}", 400)
        self._count = initial
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def add(self, count: int) -> int:
        with self._lock:
            if self._count + count > MAX_COUNT:
                raise InventoryError(f"the inventory holds at most {MAX_COUNT}", 409)
            self._count += count
            return self._count

    def take(self, count: int) -> int:
        with self._lock:
            if count > self._count:
                raise InventoryError(f"only {self._count} left", 409)
            self._count -= count
            return self._count
