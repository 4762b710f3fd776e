"""The POP3 service: RFC 1939 with the Exchange 2007/2010 behaviours of MS-STANXPOP3."""
