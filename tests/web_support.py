"""Reading the dashboard's HTML in tests: a minimal element tree from the stdlib parser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from hub.store import Store
from hub.store.keys import Scope
from hub.web.sessions import SIGNIN_COOKIE_NAME

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self) -> Iterator[Element]:
        yield self
        for c in self.children:
            if isinstance(c, Element):
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        def match(e: Element) -> bool:
            return (tag is None or e.tag == tag) and all(
                e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()
            )

        return [e for e in self.iter() if match(e)]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'}> with {attrs}"
        return found[0]

    def by_id(self, element_id: str) -> Element:
        return self.find(id=element_id)

    def select(self, predicate: Callable[[Element], bool]) -> list[Element]:
        return [e for e in self.iter() if predicate(e)]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    return builder.root


def sign_in(client: TestClient, store: Store, scope: Scope = Scope.read) -> str:
    """Sign `client` in with a fresh key of `scope`; returns the key's token."""
    _, token = store.keys.create(scope, name=f"web-{scope.value}")
    response = post_signin(client, token)
    assert response.status_code == 303, response.text
    return token


def signin_nonce(client: TestClient) -> str:
    """GET /signin as a browser does: sets the signed nonce cookie; returns the form's nonce."""
    page = parse(client.get("/signin").text)
    return page.find("input", name="signin_nonce").attrs["value"]


def post_signin(client: TestClient, api_key: str, next: str = "/", **headers: str) -> Any:
    """Fill in and send the sign-in form, as a browser does after GET /signin.

    The nonce cookie goes back in an explicit Cookie header: with HUB_WEB_COOKIE_SECURE=always
    on the test's plain-http URL the jar would keep a Secure cookie to itself, while a browser
    behind a TLS proxy sends it."""
    form = client.get("/signin")
    nonce = parse(form.text).find("input", name="signin_nonce").attrs["value"]
    cookie = form.cookies.get(SIGNIN_COOKIE_NAME)
    assert cookie, form.headers
    data = {"api_key": api_key, "next": next, "signin_nonce": nonce}
    sent = {"Cookie": f"{SIGNIN_COOKIE_NAME}={cookie}", **headers}
    return client.post("/signin", data=data, headers=sent, follow_redirects=False)


def csrf_token(client: TestClient, path: str = "/") -> str:
    page = parse(client.get(path).text)
    return page.find("input", name="csrf_token").attrs["value"]


def api_get(client: TestClient, token: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()
