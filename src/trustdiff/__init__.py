"""trustdiff: did the alignment survive? Paired trust audits of a baseline and derived models.

The public API is re-exported here; the modules behind it are private implementation.
"""

__version__ = "0.1.0"

from trustdiff.errors import TrustdiffError
from trustdiff.records import Finding, Item, Judgment, Message, Outcome, Sample, Verdict

__all__ = [
    "Finding",
    "Item",
    "Judgment",
    "Message",
    "Outcome",
    "Sample",
    "TrustdiffError",
    "Verdict",
    "__version__",
]
