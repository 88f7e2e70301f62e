"""mediagate: a client of mediagate's admin API, and (in ``mediagate.django``) a Django
integration.

    import mediagate

    with mediagate.Client("http://127.0.0.1:9091", token) as mg:
        mg.ensure_user("alice")
        up = mg.upload("alice", "report.pdf", open("report.pdf", "rb"))
        print(up["url"])
"""

from ._version import __version__
from .changes import Change
from .client import MAX_IDS_PER_CALL, Client
from .content import FileContent
from .errors import Error, UnavailableError

__all__ = [
    "Change",
    "Client",
    "Error",
    "FileContent",
    "MAX_IDS_PER_CALL",
    "UnavailableError",
    "__version__",
]
