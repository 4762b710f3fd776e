"""TLS for IMAP and POP3: the ``[tls]`` table (:mod:`~exchmail.tls.config`), server
contexts with SNI and reload (:mod:`~exchmail.tls.context`), SIGHUP handling
(:mod:`~exchmail.tls.service`) and self-signed certificates (:mod:`~exchmail.tls.selfsigned`)."""
