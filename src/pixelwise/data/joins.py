"""Numbered things joined into groups (union-find), for pieces that meet across the blocks of a
slide and boxes that overlap."""

from __future__ import annotations


class Joins:
    """Numbers 0, 1, ... (``count`` at the start, more by :meth:`add`), each its own group until
    :meth:`join` puts two groups together."""

    def __init__(self, count: int = 0) -> None:
        self.parent = list(range(count))

    def add(self) -> int:
        """A new number in a group of its own."""
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        """The smallest number of ``a``'s group (path halving on the way)."""
        parent = self.parent
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        return a

    def join(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """Each group's numbers, ascending, the groups in the order of their smallest."""
        found: dict[int, list[int]] = {}
        for number in range(len(self.parent)):
            found.setdefault(self.find(number), []).append(number)
        return list(found.values())
