"""Authentication: credential checkers, the user directory and (later) the realm.

:mod:`exchmail.auth.accounts` keeps salted password hashes in a file and
checks ``twisted.cred`` user name/password credentials against it.
"""
