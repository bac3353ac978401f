"""The faults a user can cause and fix, as opposed to the program's own.

The CLI (:func:`trainact.cli.main`) prints a :class:`UserError`'s message as one line,
``trainact <command>: error: <message>``, and exits 2, without a traceback; so does it for an
:class:`OSError` (a missing, unreadable or unwritable file, a full disk), whose message names
the file. Anything else is a bug and keeps its traceback. Imports nothing, so that every module
may raise one.
"""

from __future__ import annotations


class UserError(Exception):
    """A fault the user can cause and fix; its message names the file or setting and the fix."""
