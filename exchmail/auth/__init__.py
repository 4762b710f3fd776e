"""Authentication: credential checkers, the user directory, the realm and login policy.

- :mod:`exchmail.auth.accounts`: the accounts file (salted scrypt hashes)
  and its checker and directory (:class:`~exchmail.auth.checker.AccountsChecker`,
  :class:`~exchmail.auth.checker.AccountsService`);
- :mod:`exchmail.auth.cache` and :mod:`exchmail.auth.hashpool`: the
  verified-credentials cache and the password-hashing threads;
- :mod:`exchmail.auth.ldap`: the LDAP checker and directory;
- :mod:`exchmail.auth.realm`: :class:`~exchmail.auth.realm.MailRealm` and
  :class:`~exchmail.auth.realm.LoginMind`;
- :mod:`exchmail.auth.sasl`: SASL mechanisms; :mod:`exchmail.auth.throttle`:
  failed-login budgets across sessions.
"""
