"""Pagination strategies: Link header, next URL or cursor by JMESPath, offset/limit, page number.

A paginator is pure: given the page just read it names the next request (URL and query
parameters) or says there is none. Every strategy also stops on an empty page, on a `stop`
condition that is truthy for the page's body, after `max_pages`, and when a next link or
cursor repeats (a server bug that would otherwise loop forever).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.mapping import Expression, compile_expression

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CursorPagination",
    "LinkPagination",
    "NextUrlPagination",
    "OffsetPagination",
    "Page",
    "PageNumberPagination",
    "PaginationSpec",
    "Paginator",
]

Params = dict[str, Any]


class _Pagination(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stop: str | None = Field(
        None,
        description="JMESPath over the response body; a truthy result ends pagination.",
        examples=["meta.has_more == `false`"],
    )
    max_pages: int | None = Field(None, ge=1, description="Read at most this many pages.")

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.stop:
            yield ("stop",), self.stop


class LinkPagination(_Pagination):
    """RFC 8288 `Link` header: follow the link with relation `rel` (GitHub, Shopify)."""

    type: Literal["link"] = "link"
    rel: str = Field("next", description="Link relation to follow.")


class NextUrlPagination(_Pagination):
    """The next page's URL found in the body by a JMESPath expression."""

    type: Literal["next_url"] = "next_url"
    path: str = Field(description="JMESPath to the next URL.", examples=["links.next"])

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("path",), self.path
        yield from super().expressions()


class CursorPagination(_Pagination):
    """An opaque cursor found in the body by JMESPath, sent back as a query parameter."""

    type: Literal["cursor"] = "cursor"
    path: str = Field(description="JMESPath to the next cursor.", examples=["meta.next_cursor"])
    param: str = Field("cursor", description="Query parameter that carries the cursor.")

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("path",), self.path
        yield from super().expressions()


class OffsetPagination(_Pagination):
    """offset/limit: ends on a page shorter than `limit` (or at `total_path`)."""

    type: Literal["offset"] = "offset"
    limit: int = Field(100, ge=1, description="Records per page.")
    start: int = Field(0, ge=0, description="First offset.")
    offset_param: str = Field("offset", description="Query parameter for the offset.")
    limit_param: str = Field("limit", description="Query parameter for the page size.")
    total_path: str | None = Field(None, description="JMESPath to the total record count.")

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.total_path:
            yield ("total_path",), self.total_path
        yield from super().expressions()


class PageNumberPagination(_Pagination):
    """Page numbers: ends on an empty or short page (with `size`) or at `total_pages_path`."""

    type: Literal["page"] = "page"
    param: str = Field("page", description="Query parameter for the page number.")
    start: int = Field(1, ge=0, description="Number of the first page.")
    size: int | None = Field(None, ge=1, description="Records per page, sent as `size_param`.")
    size_param: str = Field("per_page", description="Query parameter for the page size.")
    total_pages_path: str | None = Field(None, description="JMESPath to the page count.")

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.total_pages_path:
            yield ("total_pages_path",), self.total_pages_path
        yield from super().expressions()


PaginationSpec = Annotated[
    LinkPagination | NextUrlPagination | CursorPagination | OffsetPagination | PageNumberPagination,
    Field(discriminator="type"),
]


@dataclass(slots=True)
class Page:
    """What a paginator looks at: the request's URL, the decoded body, links and record count."""

    url: httpx.URL
    body: Any
    records: int
    links: Mapping[str | None, Mapping[str, str]] = field(default_factory=dict)


class Paginator:
    """Walks the pages of one read; create a new one per read."""

    def __init__(
        self,
        spec: PaginationSpec | None,
        url: str,
        params: Params,
        expressions: Callable[[tuple[str | int, ...], str], Expression] | None = None,
    ) -> None:
        """``expressions``: the compiled expressions of the ``pagination`` table, by key path."""
        self.spec = spec
        self.url = url
        self.params = dict(params)
        self.pages = 0
        self._seen: set[str] = set()
        lookup = expressions or (lambda _loc, source: compile_expression(source))

        def compiled(key: str) -> Expression | None:
            source = getattr(spec, key, None)
            return lookup((key,), source) if source else None

        self._stop = compiled("stop")
        self._path = compiled("path")
        self._total = compiled("total_path") or compiled("total_pages_path")
        self._position = (
            spec.start if isinstance(spec, OffsetPagination | PageNumberPagination) else 0
        )

    def first(self) -> tuple[str, Params]:
        """The first request: the configured URL with the strategy's starting parameters."""
        spec = self.spec
        params = dict(self.params)
        if isinstance(spec, OffsetPagination):
            params[spec.offset_param] = spec.start
            params[spec.limit_param] = spec.limit
        elif isinstance(spec, PageNumberPagination):
            params[spec.param] = spec.start
            if spec.size:
                params[spec.size_param] = spec.size
        return self.url, params

    def next(self, page: Page) -> tuple[str, Params] | None:
        """The request after ``page``, or None when the read is complete."""
        self.pages += 1
        spec = self.spec
        if spec is None or page.records == 0:
            return None
        if spec.max_pages is not None and self.pages >= spec.max_pages:
            return None
        if self._stop is not None and _truthy(self._stop.search(page.body)):
            return None
        if isinstance(spec, LinkPagination):
            link = page.links.get(spec.rel, {}).get("url")
            return self._follow(page, link)
        if isinstance(spec, NextUrlPagination):
            assert self._path is not None
            return self._follow(page, self._path.search(page.body))
        if isinstance(spec, CursorPagination):
            assert self._path is not None
            cursor = self._path.search(page.body)
            if cursor in (None, "") or not self._first_time(f"cursor:{cursor}"):
                return None
            return self.url, {**self.params, spec.param: cursor}
        if isinstance(spec, OffsetPagination):
            self._position += page.records
            if page.records < spec.limit or self._reached(page, self._position):
                return None
            return self.url, {
                **self.params,
                spec.offset_param: self._position,
                spec.limit_param: spec.limit,
            }
        assert isinstance(spec, PageNumberPagination)
        if spec.size and page.records < spec.size:
            return None
        self._position += 1
        if self._reached(page, self._position - spec.start):
            return None
        params = {**self.params, spec.param: self._position}
        if spec.size:
            params[spec.size_param] = spec.size
        return self.url, params

    def every_page(self, first: Page) -> list[Params] | None:
        """Every page's query parameters, known from the first page: offset pagination
        with ``total_path``, page numbers with ``total_pages_path`` (both capped by
        ``max_pages``), or a ``max_pages`` alone. None when the pages are known only by
        reading them (links, next URLs, cursors, no total)."""
        spec = self.spec
        if not isinstance(spec, OffsetPagination | PageNumberPagination):
            return None
        total = self._total.search(first.body) if self._total is not None else None
        if not isinstance(total, int):
            total = None
        if isinstance(spec, OffsetPagination) and total is not None:
            total = -(-max(total - spec.start, 0) // spec.limit)
        known = [c for c in (total, spec.max_pages) if c is not None]
        if not known:
            return None
        count = min(known)
        pages: list[Params] = []
        for n in range(max(count, 1)):
            if isinstance(spec, OffsetPagination):
                at = {spec.offset_param: spec.start + n * spec.limit, spec.limit_param: spec.limit}
            else:
                at = {spec.param: spec.start + n}
                if spec.size:
                    at[spec.size_param] = spec.size
            pages.append({**self.params, **at})
        return pages

    def _reached(self, page: Page, position: int) -> bool:
        """True when ``total_path``/``total_pages_path`` says ``position`` is past the end."""
        if self._total is None:
            return False
        total = self._total.search(page.body)
        return isinstance(total, int | float) and position >= total

    def _follow(self, page: Page, link: object) -> tuple[str, Params] | None:
        if not isinstance(link, str) or not link:
            return None
        target = str(page.url.join(link))
        if not self._first_time(target):
            return None
        return target, {}

    def _first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _truthy(value: Any) -> bool:
    """JMESPath truth: false, null, '', [] and {} are false."""
    return value not in (None, False, "", [], {})
