"""User-facing errors: the CLI prints `error: <message>` on one line and exits non-zero."""


class TrustdiffError(Exception):
    """Bad input or an unrecoverable condition the user can act on (never a bug)."""


class SpecError(TrustdiffError):
    """A model spec string or config could not be resolved."""


class StoreError(TrustdiffError):
    """The SQLite store cannot be opened or is not a trustdiff store."""


class BackendError(TrustdiffError):
    """A backend failed in a way retrying will not fix (missing weights, dead endpoint)."""


class DataError(TrustdiffError):
    """A public benchmark file is missing, unreachable, truncated or differs from its pin."""
