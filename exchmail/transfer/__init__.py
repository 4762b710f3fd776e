"""Moving mail in and out of the store: import and export.

:mod:`.importer` puts the messages of a source into an account (folders,
flags, keywords, internal dates, order; idempotent through an import map);
the sources are :mod:`.mbox` files, :mod:`.maildir` trees and remote
:mod:`.imap` accounts.  :mod:`.exporter` writes an account out as mbox
files or a Maildir++ tree.  ``exchmail import`` and ``exchmail export``
(:mod:`exchmail.cli.transfer`) drive them.
"""
