import ipaddress


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The peer address. X-Forwarded-For is not trusted: put a proxy's real-IP module in front
    and set REMOTE_ADDR there if you need the original client."""
    return _valid_ip(request.META.get("REMOTE_ADDR"))


def scope_ip(scope) -> str | None:
    client = scope.get("client")
    return _valid_ip(client[0]) if client else None
