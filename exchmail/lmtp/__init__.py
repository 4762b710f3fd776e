"""LMTP (RFC 2033): local delivery from an MTA (Postfix, Exim) into the store.

:mod:`.server` is the protocol (Twisted's ESMTP server with LHLO and one
reply per recipient), :mod:`.body` reads the DATA section, :mod:`.recipients`
maps addresses to accounts through the login directory, :mod:`.delivery`
stores a message the way IMAP APPEND does, and :mod:`.settings` is the
``[lmtp]`` table.  ``exchmail deliver`` uses the same delivery path.
"""
