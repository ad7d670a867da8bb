r"""FreeSWITCH's string splitting rules, which decide how API arguments are read.

``separate_string`` follows switch_separate_string (switch_utils.c): split on runs of the
delimiter (a space unless the input starts with ``^^X``, which makes ``X`` the delimiter); a
``'…'`` section is one token and its quotes are removed; a backslash escapes a quote, the
delimiter, a backslash or ``\n \t \r \s`` and is otherwise kept; the last slot receives the whole
rest of the line. ``parse_brackets`` reads the ``{a=1,b=2}`` variable block of an originate
string (switch_event_create_brackets): ``,`` separates, ``\,`` escapes a comma, ``^^;`` at the
start changes the separator, and a value is split on its first ``=``.
"""

from __future__ import annotations

BACKSLASH = "\\"
_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r", "s": " "}


def _escaped(text: str, i: int, delimiter: str) -> str | None:
    """What the backslash at ``i`` stands for, or None when it is kept literally."""
    if i + 1 >= len(text):
        return None
    nxt = text[i + 1]
    if nxt in ("'", '"', BACKSLASH, delimiter):
        return nxt
    return _UNESCAPE.get(nxt)


def _clean(piece: str, delimiter: str) -> str:
    """Resolve escapes and drop the quotes that pair up (cleanup_separated_string)."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(piece):
        ch = piece[i]
        if ch == BACKSLASH:
            esc = _escaped(piece, i, delimiter)
            if esc is not None:
                out.append(esc)
                i += 2
                continue
        if ch == "'" and (quoted or "'" in piece[i + 1 :]):
            quoted = not quoted
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def separate_string(line: str, max_parts: int) -> list[str]:
    delimiter = " "
    if line.startswith("^^") and len(line) > 2:
        delimiter, line = line[2], line[3:]
    parts: list[str] = []
    i, n = 0, len(line)
    while i < n and len(parts) < max_parts:
        if delimiter == " ":
            while i < n and line[i] == " ":
                i += 1
            if i >= n:
                break
        if len(parts) == max_parts - 1:
            parts.append(_clean(line[i:], delimiter))  # the last slot takes the rest of the line
            break
        start, quoted = i, False
        while i < n:
            ch = line[i]
            if ch == BACKSLASH and _escaped(line, i, delimiter) is not None:
                i += 2
                continue
            if ch == "'" and (quoted or "'" in line[i + 1 :]):
                quoted = not quoted
            elif ch == delimiter and not quoted:
                break
            i += 1
        parts.append(_clean(line[start:i], delimiter))
        i += 1  # past the delimiter
    return parts


def parse_brackets(text: str) -> tuple[dict[str, str], str]:
    """``{a=1,b=2}rest`` → ({"a": "1", "b": "2"}, "rest"); text without a leading ``{`` is returned whole."""
    if not text.startswith("{"):
        return {}, text
    depth, end = 0, -1
    for i, ch in enumerate(text):
        if ch == "{" and (i == 0 or text[i - 1] != BACKSLASH):
            depth += 1
        elif ch == "}" and text[i - 1] != BACKSLASH:
            depth -= 1
            if depth == 0:
                end = i
                break
    if end == -1:
        raise ValueError("unterminated {…} variable block")
    body, rest = text[1:end], text[end + 1 :]
    separator = ","
    if body.startswith("^^") and len(body) > 2:
        separator, body = body[2], body[3:]
    items: list[str] = []
    token: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == BACKSLASH and i + 1 < len(body) and body[i + 1] == separator:
            token.append(separator)
            i += 2
            continue
        if ch == separator:
            items.append("".join(token))
            token = []
        else:
            token.append(ch)
        i += 1
    items.append("".join(token))
    variables: dict[str, str] = {}
    for item in items:
        if "=" in item:
            name, value = item.split("=", 1)
            variables[name.strip()] = value
    return variables, rest
